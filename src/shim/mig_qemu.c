/* What both ends of a migration and the snapshot path ask of QEMU's migration: handing it a
 * file descriptor, setting the same capabilities on both ends, waiting for its migration
 * status to settle, and making a dead peer or link show up as a socket error. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/hv_vm.h"
#include "godwit/qmp.h"
#include "godwit/knobs.h"
#include "godwit/util.h"
#include "migrate.h"

int mig_qemu_stream(struct container *ct, enum hv_mig_dir dir, int fd, int flags,
		    struct gw_err *err)
{
	int r = hv_vm_getfd(ct->qmp, "mig", fd, 5000, err);
	if (r < 0)
		return r;
	r = hv_mig_start(ct->qmp, dir, "fd:mig", flags & MIG_STREAM_RESUME, 5000, err);
	mig_trace(dir == HV_MIG_OUT ? "source: QEMU's migrate started"
				    : "destination: QEMU's migrate-incoming started");
	return r;
}

int mig_wait_qemu_for(struct container *ct, int timeout_ms, enum hv_mig_status also,
		      enum hv_mig_status *status, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		struct hv_mig_stats s;
		int r = hv_mig_query(ct->qmp, &s, 5000, err);
		if (r < 0)
			return r;
		*status = s.status;
		if (s.status == HV_MIG_FAILED && s.error_desc[0])
			gw_err_set(err, EIO, "QEMU: %s", s.error_desc);
		if (s.status == HV_MIG_COMPLETED || s.status == HV_MIG_FAILED ||
		    s.status == HV_MIG_CANCELLED || (also != HV_MIG_NONE && s.status == also))
			return 0;
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "QEMU's migration still %s after %d s",
					  s.status_name, timeout_ms / 1000);
		/* its end starts the hand-over: QEMU's MIGRATION event wakes us at once */
		mig_await_qemu(ct, 50);
	}
}

void mig_await_qemu(struct container *ct, int ms)
{
	mig_await(ct, qmp_fd(ct->qmp), ms);
	while (hv_mig_wait_event(ct->qmp, 0, NULL, NULL) == 0)
		;
}

int mig_wait_qemu(struct container *ct, int timeout_ms, enum hv_mig_status *status,
		  struct gw_err *err)
{
	return mig_wait_qemu_for(ct, timeout_ms, HV_MIG_NONE, status, err);
}

/* The capabilities a CONFIG's "caps" may carry; anything else is refused. */
static const enum hv_mig_cap MIG_CAPS[] = { HV_MIG_CAP_XBZRLE, HV_MIG_CAP_AUTO_CONVERGE,
					    HV_MIG_CAP_EVENTS, HV_MIG_CAP_POSTCOPY_RAM,
					    HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER };

json_object *mig_caps_to_json(const struct hv_mig_cap_state *caps, size_t n)
{
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, hv_mig_cap_name(caps[i].cap),
				       json_object_new_boolean(caps[i].on));
	return o;
}

int mig_set_caps(struct container *ct, json_object *caps, struct gw_err *err)
{
	struct hv_mig_cap_state list[ARRAY_SIZE(MIG_CAPS)];
	size_t n = 0;
	json_object_object_foreach(caps, k, v) {
		enum hv_mig_cap c;
		size_t i = ARRAY_SIZE(MIG_CAPS);
		if (hv_mig_cap_from_name(k, &c) == 0)
			for (i = 0; i < ARRAY_SIZE(MIG_CAPS) && MIG_CAPS[i] != c; i++)
				;
		/* a JSON object has each name once, so n stays within the list */
		if (i == ARRAY_SIZE(MIG_CAPS) || !json_object_is_type(v, json_type_boolean) ||
		    n == ARRAY_SIZE(list))
			return gw_err_set(err, EPROTO, "unknown or malformed capability \"%.64s\"", k);
		list[n++] = (struct hv_mig_cap_state){ c, json_object_get_boolean(v) };
	}
	return hv_mig_set_caps(ct->qmp, list, n, 5000, err);
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
	/* the hand-over's small messages (DONE, COMMIT, RUNNING) happen while the guest is
	 * paused: without this, Nagle and the peer's delayed ACK hold each one back ~40 ms */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/* Bytes queued in socket buffers are invisible to QEMU's downtime estimate, yet the
	 * destination must read them all before it can run the guest: with the kernel's
	 * autotuned buffers (several MiB) the guest stayed frozen ~33 ms after an idle move over
	 * a veth, 4.5 ms with these (docs/migration-policy.md, "Socket buffers") */
	int buf = MIG_SOCK_BUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

/* The post-copy disk path (docs/migration-protocol.md, "Post-copy"): the destination exports
 * its overlay over NBD, the source mirrors its overlay's own blocks into it. */
#define MIG_NBD_EXPORT_ID "mig-disk0"

int mig_nbd_export(struct container *ct, int conn_fd, uint16_t *port, struct gw_err *err)
{
	/* the node behind device disk0 (`-drive if=none,id=disk0` gives it a generated name) */
	char node[128];
	int r = hv_block_node_of(ct->qmp, "disk0", node, sizeof(node), 5000, err);
	if (r < 0)
		return r;
	/* listen where the source reached us, on a port the kernel picks; QEMU gets the socket */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(conn_fd, (struct sockaddr *)&ss, &sl) < 0)
		return gw_err_sys(err, errno, "getsockname");
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	else
		return gw_err_set(err, EAFNOSUPPORT, "migration socket is not TCP");
	cleanup_close int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return gw_err_sys(err, errno, "socket");
	/* the connection QEMU accepts inherits this: the NBD handshake's replies come in small
	 * writes that Nagle and the client's delayed ACK held back ~45 ms each (two of them,
	 * while the source QEMU's monitor waited in drive-mirror and its guest output stalled) */
	int on = 1;
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
		return gw_err_sys(err, errno, "NBD listen socket");
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if ((r = hv_vm_getfd(ct->qmp, "nbd", lfd, 5000, err)) < 0)
		return r;
	if ((r = hv_nbd_server_start_fd(ct->qmp, "nbd", 1, 5000, err)) < 0)
		return gw_err_prefix(err, "start the NBD server");
	r = hv_block_export_add_nbd(ct->qmp, MIG_NBD_EXPORT_ID, node, MIG_NBD_EXPORT, 1, 5000, err);
	if (r < 0) {
		hv_nbd_server_stop(ct->qmp, 5000, NULL);
		return gw_err_prefix(err, "export the disk over NBD");
	}
	return 0;
}

int mig_nbd_stop(struct container *ct, struct gw_err *err)
{
	hv_block_export_del(ct->qmp, MIG_NBD_EXPORT_ID, 1, 5000, NULL);
	int r = hv_nbd_server_stop(ct->qmp, 5000, err);
	if (r < 0)
		return gw_err_prefix(err, "stop the NBD server");
	/* the export closes asynchronously: the guest must not run while a client may write */
	for (int i = 0; i < 500; i++) {
		size_t n;
		if ((r = hv_block_export_count(ct->qmp, &n, 5000, err)) < 0)
			return r;
		if (n == 0)
			return 0;
		poll(NULL, 0, 10);
	}
	return gw_err_set(err, ETIMEDOUT, "NBD export still open after 5 s");
}

/* The source's block node that is the destination's export, over NBD. */
#define MIG_MIRROR_TARGET "mig-target0"

static void mirror_target_del(struct container *ct)
{
	hv_blockdev_del(ct->qmp, MIG_MIRROR_TARGET, 5000, NULL);
}

int mig_mirror_start(struct container *ct, const char *host, uint16_t port, struct gw_err *err)
{
	int r = hv_blockdev_add_nbd(ct->qmp, MIG_MIRROR_TARGET, host, port, MIG_NBD_EXPORT, 5000,
				    err);
	if (r < 0)
		return gw_err_prefix(err, "NBD connection to %s port %u", host, port);
	struct hv_mirror m = {
		.job_id = MIG_MIRROR_JOB,
		.device = "disk0",
		.target = MIG_MIRROR_TARGET,
		/* only the overlay's own blocks: the base is the image, already on the destination */
		.sync = HV_MIRROR_SYNC_TOP,
		/* active mirroring: once in sync, each guest write reaches both disks before it
		 * completes, so ending the mirror inside the hand-over's pause has nothing left to
		 * copy */
		.copy_mode = HV_MIRROR_WRITE_BLOCKING,
	};
	if ((r = hv_blockdev_mirror(ct->qmp, &m, 5000, err)) < 0) {
		mirror_target_del(ct);
		return gw_err_prefix(err, "disk mirror to %s port %u", host, port);
	}
	return 0;
}

/* The mirror job's state: 1 ready, 0 not yet, -ENOENT gone. */
static int mirror_state(struct container *ct, struct gw_err *err)
{
	return hv_block_job_ready(ct->qmp, MIG_MIRROR_JOB, 5000, err);
}

int mig_mirror_wait_ready(struct container *ct, int timeout_ms, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int r = mirror_state(ct, err);
		if (r == 1)
			return 0;
		if (r == -ENOENT)
			return gw_err_set(err, EIO, "the disk mirror to the destination ended early");
		if (r < 0)
			return r;
		/* migrate-cancel; a migrate-postcopy-now waits for the RAM stream */
		if (ct->asks.cancel)
			return gw_err_set(err, ECANCELED, "cancelled by the user");
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "disk mirror not in sync after %d s",
					  timeout_ms / 1000);
		/* the guest runs on meanwhile: keep its output flowing */
		mig_pump_agent(ct, 5);
	}
}

int mig_mirror_cancel(struct container *ct, int force, struct gw_err *err)
{
	int r = hv_block_job_cancel(ct->qmp, MIG_MIRROR_JOB, force, 5000, err);
	if (r < 0 && mirror_state(ct, NULL) == -ENOENT) {
		mirror_target_del(ct); /* the job is already gone */
		return 0;
	}
	if (r < 0)
		return gw_err_prefix(err, "cancel the disk mirror");
	/* a ready mirror cancelled without force first copies what is left, then ends; this
	 * runs inside the hand-over's pause, so ask often. Its NBD connection goes with it. */
	for (int i = 0; i < 30000; i++) {
		if ((r = mirror_state(ct, err)) == -ENOENT) {
			mirror_target_del(ct);
			return 0;
		}
		if (r < 0)
			return r;
		poll(NULL, 0, 2);
	}
	return gw_err_set(err, ETIMEDOUT, "disk mirror still running 60 s after its cancel");
}

void mig_await(struct container *ct, int fd, int timeout_ms)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int64_t left = deadline - gw_now_mono_ns();
		int afd = alink_fd(ct);
		if (left <= 0)
			return;
		/* poll ignores a negative fd: with no peer (fd -1) this only serves the link,
		 * and, while a job runs, the control socket (what it may ask: ctl_handle) */
		struct pollfd pfd[2 + SHIM_CTL_POLLFDS] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = afd, .events = POLLIN | (afd >= 0 && alink_wants_write(ct) ? POLLOUT : 0) },
		};
		nfds_t n = 2;
		if (ct->job != SHIM_NO_JOB) {
			shim_ctl_pollfds(ct, pfd + 2);
			n += SHIM_CTL_POLLFDS;
		}
		if (poll(pfd, n, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
			return;
		if (pfd[0].revents)
			return;
		if (pfd[1].revents & POLLOUT)
			alink_on_writable(ct);
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && alink_on_readable(ct) == -EPIPE)
			alink_close(ct);
		if (n > 2)
			shim_ctl_serve(ct, pfd + 2);
	}
}

static void await_hook(void *ct, int fd, int ms)
{
	mig_await(ct, fd, ms);
}

void mig_qmp_serve_agent(struct container *ct, int on)
{
	if (ct->qmp)
		qmp_set_wait(ct->qmp, on ? await_hook : NULL, on ? ct : NULL);
}

void mig_pump_agent(struct container *ct, int ms)
{
	mig_await(ct, -1, ms);
}

void mig_trace(const char *what)
{
	if (gw_knobs()->mig_trace) {
		char ts[36];
		gw_fmt_rfc3339(gw_now_real_ns(), ts);
		fprintf(stderr, "%s migration: %s\n", ts, what);
	}
}
