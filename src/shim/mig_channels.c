/* QEMU's RAM channels over the move's connections (docs/migration-protocol.md, "Channels"):
 * with multifd each QEMU opens or takes its main channel and `channels` more by itself, at a
 * socket address. Here that address is a unix socket in the container's vm/ directory on each
 * host, and every connection QEMU makes there crosses on a connection of the move of its own,
 * admitted by the move's token like any other (MIG_CONN_DATA), relayed byte for byte
 * (mig_relay.c). Nothing of QEMU listens on the network. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "godwit/ctl.h"
#include "godwit/util.h"
#include "migrate.h"

#define CHANNELS_WAIT_MS 20000

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* ch->path, CT/vm/NAME, and QEMU's URI for it */
static int channels_path(struct container *ct, const char *name, struct mig_channels *ch,
			 char quri[SUN_PATH_MAX + 8], struct gw_err *err)
{
	memset(ch, 0, sizeof(*ch));
	ch->path = gw_strdup_printf("%s/vm/%s", ct->dir, name);
	if (!ch->path)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (strlen(ch->path) >= SUN_PATH_MAX)
		return gw_err_set(err, ENAMETOOLONG, "socket path too long: %s", ch->path);
	snprintf(quri, SUN_PATH_MAX + 8, "unix:%s", ch->path);
	return 0;
}

static int add_relay(struct mig_channels *ch, int a, int b, struct gw_err *err)
{
	if (ch->n > MIG_CHANNELS_MAX) {
		close(a);
		close(b);
		return gw_err_set(err, EPROTO, "QEMU opened more channels than the move has");
	}
	int r = mig_relay_start(a, b, &ch->relay[ch->n], err);
	if (r == 0)
		ch->n++;
	return r;
}

int mig_src_channels(struct container *ct, const char *uri, const char *token, int channels,
		     struct mig_channels *ch, struct gw_err *err)
{
	char quri[SUN_PATH_MAX + 8];
	int r = channels_path(ct, "mig-out.sock", ch, quri, err);
	if (r < 0)
		return r;
	int lfd = ctl_listen(ch->path, err);
	if (lfd < 0)
		return lfd;
	if ((r = shim_jail_socket(ch->path, err)) < 0)
		goto out;
	if ((r = hv_mig_start(ct->qmp, HV_MIG_OUT, quri, 0, 5000, err)) < 0)
		goto out;
	mig_trace("source: QEMU's migrate started (channels)");
	/* the main channel, then each multifd channel, as QEMU opens them */
	int64_t deadline = gw_now_mono_ns() + CHANNELS_WAIT_MS * 1000000LL;
	while (r == 0 && ch->n < channels + 1) {
		int left = (int)((deadline - gw_now_mono_ns()) / 1000000);
		int w = left > 0 ? mig_await_peer(ct, lfd, left, err) : 0;
		if (w <= 0) {
			r = w < 0 ? w : gw_err_set(err, ETIMEDOUT,
						   "QEMU opened %d of its %d channels in %d s",
						   ch->n, channels + 1, CHANNELS_WAIT_MS / 1000);
			break;
		}
		int qfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (qfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				r = gw_err_sys(err, errno, "accept %s", ch->path);
			continue;
		}
		struct mig_conn dc = { .fd = -1 }; /* (tuned by mig_connect) */
		if ((r = mig_open_control(ct, uri, MIG_CONN_DATA, token, &dc, err)) < 0) {
			close(qfd);
			break;
		}
		r = add_relay(ch, qfd, dc.fd, err);
	}
	if (r == 0)
		mig_trace("source: QEMU's channels relayed");
out:
	close(lfd);
	unlink(ch->path);
	return r;
}

/* an admitted connection goes to QEMU's socket at once: QEMU takes the main channel first */
static int dst_connect(void *arg, struct mig_conn *cc, struct gw_err *err)
{
	struct mig_channels *ch = arg;
	int qfd = ctl_connect(ch->path, err);
	if (qfd < 0) {
		close(cc->fd);
		return qfd;
	}
	return add_relay(ch, cc->fd, qfd, err);
}

int mig_dst_channels(struct container *ct, int listen_fd, const char *token, int channels,
		     struct mig_channels *ch, struct gw_err *err)
{
	char quri[SUN_PATH_MAX + 8];
	int r = channels_path(ct, "mig-in.sock", ch, quri, err);
	if (r < 0)
		return r;
	unlink(ch->path);
	/* QEMU binds and listens before it answers */
	if ((r = hv_mig_start(ct->qmp, HV_MIG_IN, quri, 0, 5000, err)) < 0)
		return r;
	mig_trace("destination: QEMU's migrate-incoming started (channels)");
	r = mig_accept_each(ct, listen_fd, MIG_CONN_DATA, token, CHANNELS_WAIT_MS, channels + 1,
			    dst_connect, ch, err);
	if (r == 0)
		mig_trace("destination: QEMU's channels relayed");
	return r;
}

void mig_channels_stop(struct mig_channels *ch)
{
	for (int i = 0; i < ch->n; i++) {
		mig_relay_stop(ch->relay[i]);
		ch->relay[i] = NULL;
	}
	if (ch->path)
		unlink(ch->path);
	free(ch->path);
	ch->path = NULL;
}
