/* One rtnetlink conversation (a request, its acknowledgement or its dump) over a socket of its
 * own: the hostnet layer makes a handful of requests per command, so no socket is kept. */
#include <errno.h>
#include <time.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "hostnet_int.h"

#define NL_BUF 32768 /* a dump's messages come in batches of up to a page or so each */

static int talk(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[NL_BUF] __attribute__((aligned(8)));
	unsigned int portid = mnl_socket_get_portid(nl), seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	int r;
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -errno : 0;
}

int hn_nl_talk(struct nlmsghdr *nlh, int (*cb)(const struct nlmsghdr *, void *), void *data,
	       const char *what, struct gw_err *err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return gw_err_sys(err, errno, "%s: netlink socket", what);
	nlh->nlmsg_seq = (unsigned int)time(NULL);
	if (!cb)
		nlh->nlmsg_flags |= NLM_F_ACK;
	int r = mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ? -errno : talk(nl, nlh, cb, data);
	mnl_socket_close(nl);
	if (r < 0)
		return gw_err_sys(err, -r, "%s", what);
	return 0;
}
