/* What both ends of a migration and the snapshot path ask of QEMU's migration: handing it a
 * file descriptor, setting the same capabilities on both ends, waiting for its migration
 * status to settle, and making a dead peer or link show up as a socket error. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "godwit/qmp.h"
#include "godwit/util.h"
#include "migrate.h"

int mig_give_fd(struct container *ct, int fd, struct gw_err *err)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	int r = qmp_execute_with_fd(ct->qmp, "getfd", args, fd, NULL, 5000, err);
	json_object_put(args);
	return r;
}

int mig_wait_qemu(struct container *ct, int timeout_ms, char *status, size_t len,
		  struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		json_object *ret, *v;
		int r = qmp_execute(ct->qmp, "query-migrate", NULL, &ret, 5000, err);
		if (r < 0)
			return r;
		const char *s = json_object_object_get_ex(ret, "status", &v)
					? json_object_get_string(v) : "none";
		snprintf(status, len, "%s", s);
		int settled = !strcmp(s, "completed") || !strcmp(s, "failed") ||
			      !strcmp(s, "cancelled");
		if (!strcmp(s, "failed") && json_object_object_get_ex(ret, "error-desc", &v))
			gw_err_set(err, EIO, "QEMU: %s", json_object_get_string(v));
		json_object_put(ret);
		if (settled)
			return 0;
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "QEMU's migration still %s after %d s",
					  status, timeout_ms / 1000);
		poll(NULL, 0, 20);
	}
}

/* The names a CONFIG's "caps" may carry; anything else is refused. */
static const char *const MIG_CAP_NAMES[] = { "xbzrle", "auto-converge", "events", "postcopy-ram" };

int mig_set_caps(struct container *ct, json_object *caps, struct gw_err *err)
{
	json_object *arr = json_object_new_array();
	json_object_object_foreach(caps, k, v) {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(MIG_CAP_NAMES); i++)
			if (!strcmp(k, MIG_CAP_NAMES[i]))
				break;
		if (i == ARRAY_SIZE(MIG_CAP_NAMES) || !json_object_is_type(v, json_type_boolean)) {
			json_object_put(arr);
			return gw_err_set(err, EPROTO, "unknown or malformed capability \"%.64s\"", k);
		}
		json_object *c = json_object_new_object();
		json_object_object_add(c, "capability", json_object_new_string(k));
		json_object_object_add(c, "state", json_object_new_boolean(json_object_get_boolean(v)));
		json_object_array_add(arr, c);
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "capabilities", arr);
	int r = qmp_execute(ct->qmp, "migrate-set-capabilities", a, NULL, 5000, err);
	json_object_put(a);
	return r;
}

void mig_sock_tune(int fd)
{
	/* QEMU blocks on the socket while it owns it: keepalives make a silent peer (host gone,
	 * link down) a read error within ~10 s, and the user timeout does the same for a write
	 * that stays unacknowledged. Best effort: a failure only loses the early warning. */
	int on = 1, idle = 4, intvl = 2, cnt = 3;
	unsigned int user_ms = 10000;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}
