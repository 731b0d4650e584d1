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

#include "godwit/qmp.h"
#include "godwit/util.h"
#include "migrate.h"

int mig_qemu_stream(struct container *ct, const char *cmd, int fd, int flags,
		    struct gw_err *err)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	int r = qmp_execute_with_fd(ct->qmp, "getfd", args, fd, NULL, 5000, err);
	json_object_put(args);
	if (r < 0)
		return r;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:mig"));
	if (flags & MIG_STREAM_RESUME)
		json_object_object_add(args, "resume", json_object_new_boolean(1));
	r = qmp_execute(ct->qmp, cmd, args, NULL, 5000, err);
	json_object_put(args);
	mig_trace(!strcmp(cmd, "migrate") ? "source: QEMU's migrate started"
					  : "destination: QEMU's migrate-incoming started");
	return r;
}

int mig_query_status(struct container *ct, char *status, size_t len, char *why, size_t wlen,
		     json_object **ram, struct gw_err *err)
{
	json_object *ret, *v;
	int r = qmp_execute(ct->qmp, "query-migrate", NULL, &ret, 5000, err);
	if (r < 0)
		return r;
	snprintf(status, len, "%s", json_object_object_get_ex(ret, "status", &v)
					    ? json_object_get_string(v) : "none");
	if (why)
		snprintf(why, wlen, "%s", json_object_object_get_ex(ret, "error-desc", &v)
					       ? json_object_get_string(v) : "");
	if (ram)
		*ram = json_object_object_get_ex(ret, "ram", &v) ? json_object_get(v) : NULL;
	json_object_put(ret);
	return 0;
}

int mig_wait_qemu_for(struct container *ct, int timeout_ms, const char *also, char *status,
		      size_t len, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	char why[256];
	for (;;) {
		int r = mig_query_status(ct, status, len, why, sizeof(why), NULL, err);
		if (r < 0)
			return r;
		if (!strcmp(status, "failed") && why[0])
			gw_err_set(err, EIO, "QEMU: %s", why);
		if (!strcmp(status, "completed") || !strcmp(status, "failed") ||
		    !strcmp(status, "cancelled") || (also && !strcmp(status, also)))
			return 0;
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "QEMU's migration still %s after %d s",
					  status, timeout_ms / 1000);
		/* its end starts the hand-over: QEMU's MIGRATION event wakes us at once */
		mig_await_qemu(ct, 50);
	}
}

void mig_await_qemu(struct container *ct, int ms)
{
	mig_await(ct, qmp_fd(ct->qmp), ms);
	while (qmp_wait_event(ct->qmp, "MIGRATION", 0, NULL, NULL) == 0 ||
	       qmp_wait_event(ct->qmp, "MIGRATION_PASS", 0, NULL, NULL) == 0)
		;
}

int mig_wait_qemu(struct container *ct, int timeout_ms, char *status, size_t len,
		  struct gw_err *err)
{
	return mig_wait_qemu_for(ct, timeout_ms, NULL, status, len, err);
}

/* The names a CONFIG's "caps" may carry; anything else is refused. */
static const char *const MIG_CAP_NAMES[] = { "xbzrle", "auto-converge", "events", "postcopy-ram",
					      "pause-before-switchover" };

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

/* The node behind device disk0 (`-drive if=none,id=disk0` gives it a generated name). */
static int disk0_node(struct container *ct, char *node, size_t len, struct gw_err *err)
{
	json_object *ret;
	int r = qmp_execute(ct->qmp, "query-block", NULL, &ret, 5000, err);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; json_object_is_type(ret, json_type_array) &&
			   i < json_object_array_length(ret); i++) {
		json_object *b = json_object_array_get_idx(ret, i), *v, *ins, *nn;
		if (!json_object_object_get_ex(b, "device", &v) || !gw_json_streq(v, "disk0") ||
		    !json_object_object_get_ex(b, "inserted", &ins) ||
		    !json_object_object_get_ex(ins, "node-name", &nn))
			continue;
		snprintf(node, len, "%s", json_object_get_string(nn));
		r = 0;
		break;
	}
	json_object_put(ret);
	return r < 0 ? gw_err_set(err, ENOENT, "QEMU has no inserted disk0") : 0;
}

int mig_nbd_export(struct container *ct, int conn_fd, uint16_t *port, struct gw_err *err)
{
	char node[128];
	int r = disk0_node(ct, node, sizeof(node), err);
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
	json_object *a = json_object_new_object();
	json_object_object_add(a, "fdname", json_object_new_string("nbd"));
	r = qmp_execute_with_fd(ct->qmp, "getfd", a, lfd, NULL, 5000, err);
	json_object_put(a);
	if (r < 0)
		return r;
	json_object *data = json_object_new_object(), *addr = json_object_new_object();
	json_object_object_add(data, "str", json_object_new_string("nbd"));
	json_object_object_add(addr, "type", json_object_new_string("fd"));
	json_object_object_add(addr, "data", data);
	a = json_object_new_object();
	json_object_object_add(a, "addr", addr);
	json_object_object_add(a, "max-connections", json_object_new_int(1));
	r = qmp_execute(ct->qmp, "nbd-server-start", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0)
		return gw_err_prefix(err, "nbd-server-start");
	a = json_object_new_object();
	json_object_object_add(a, "type", json_object_new_string("nbd"));
	json_object_object_add(a, "id", json_object_new_string(MIG_NBD_EXPORT_ID));
	json_object_object_add(a, "node-name", json_object_new_string(node));
	json_object_object_add(a, "name", json_object_new_string(MIG_NBD_EXPORT));
	json_object_object_add(a, "writable", json_object_new_boolean(1));
	r = qmp_execute(ct->qmp, "block-export-add", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0) {
		qmp_execute(ct->qmp, "nbd-server-stop", NULL, NULL, 5000, NULL);
		return gw_err_prefix(err, "block-export-add");
	}
	return 0;
}

int mig_nbd_stop(struct container *ct, struct gw_err *err)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "id", json_object_new_string(MIG_NBD_EXPORT_ID));
	json_object_object_add(a, "mode", json_object_new_string("hard"));
	qmp_execute(ct->qmp, "block-export-del", a, NULL, 5000, NULL);
	json_object_put(a);
	int r = qmp_execute(ct->qmp, "nbd-server-stop", NULL, NULL, 5000, err);
	if (r < 0)
		return gw_err_prefix(err, "nbd-server-stop");
	/* the export closes asynchronously: the guest must not run while a client may write */
	for (int i = 0; i < 500; i++) {
		json_object *ret;
		if ((r = qmp_execute(ct->qmp, "query-block-exports", NULL, &ret, 5000, err)) < 0)
			return r;
		size_t n = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret)
								      : 0;
		json_object_put(ret);
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
	json_object *a = json_object_new_object();
	json_object_object_add(a, "node-name", json_object_new_string(MIG_MIRROR_TARGET));
	qmp_execute(ct->qmp, "blockdev-del", a, NULL, 5000, NULL);
	json_object_put(a);
}

int mig_mirror_start(struct container *ct, const char *host, uint16_t port, struct gw_err *err)
{
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	json_object *server = json_object_new_object();
	json_object_object_add(server, "type", json_object_new_string("inet"));
	json_object_object_add(server, "host", json_object_new_string(host));
	json_object_object_add(server, "port", json_object_new_string(portstr));
	json_object *a = json_object_new_object();
	json_object_object_add(a, "driver", json_object_new_string("nbd"));
	json_object_object_add(a, "node-name", json_object_new_string(MIG_MIRROR_TARGET));
	json_object_object_add(a, "server", server);
	json_object_object_add(a, "export", json_object_new_string(MIG_NBD_EXPORT));
	int r = qmp_execute(ct->qmp, "blockdev-add", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0)
		return gw_err_prefix(err, "NBD connection to %s port %u", host, port);
	a = json_object_new_object();
	json_object_object_add(a, "job-id", json_object_new_string(MIG_MIRROR_JOB));
	json_object_object_add(a, "device", json_object_new_string("disk0"));
	json_object_object_add(a, "target", json_object_new_string(MIG_MIRROR_TARGET));
	/* only the overlay's own blocks: the base is the image, already on the destination */
	json_object_object_add(a, "sync", json_object_new_string("top"));
	/* active mirroring: once in sync, each guest write reaches both disks before it
	 * completes, so ending the mirror inside the hand-over's pause has nothing left to copy */
	json_object_object_add(a, "copy-mode", json_object_new_string("write-blocking"));
	r = qmp_execute(ct->qmp, "blockdev-mirror", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0) {
		mirror_target_del(ct);
		return gw_err_prefix(err, "blockdev-mirror to %s port %u", host, port);
	}
	return 0;
}

/* The mirror job's entry in query-block-jobs: 1 ready, 0 not yet, -ENOENT gone. */
static int mirror_state(struct container *ct, struct gw_err *err)
{
	json_object *ret;
	int r = qmp_execute(ct->qmp, "query-block-jobs", NULL, &ret, 5000, err);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; json_object_is_type(ret, json_type_array) &&
			   i < json_object_array_length(ret); i++) {
		json_object *j = json_object_array_get_idx(ret, i), *v;
		if (!json_object_object_get_ex(j, "device", &v) || !gw_json_streq(v, MIG_MIRROR_JOB))
			continue;
		r = json_object_object_get_ex(j, "ready", &v) && json_object_get_boolean(v);
	}
	json_object_put(ret);
	return r;
}

int mig_mirror_wait_ready(struct container *ct, int timeout_ms, int cancel_fd,
			  struct gw_err *err)
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
		struct signalfd_siginfo si;
		while (cancel_fd >= 0 && read(cancel_fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGUSR2)
				return gw_err_set(err, ECANCELED, "cancelled by the user");
			ct->postcopy_now = 1; /* acted on once the RAM stream runs */
		}
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "disk mirror not in sync after %d s",
					  timeout_ms / 1000);
		/* the guest runs on meanwhile: keep its output flowing */
		mig_pump_agent(ct, 5);
	}
}

int mig_mirror_cancel(struct container *ct, int force, struct gw_err *err)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "device", json_object_new_string(MIG_MIRROR_JOB));
	json_object_object_add(a, "force", json_object_new_boolean(force));
	int r = qmp_execute(ct->qmp, "block-job-cancel", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0 && mirror_state(ct, NULL) == -ENOENT) {
		mirror_target_del(ct); /* the job is already gone */
		return 0;
	}
	if (r < 0)
		return gw_err_prefix(err, "block-job-cancel");
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
		/* poll ignores a negative fd: with no peer (fd -1) this only serves the link */
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = afd, .events = POLLIN | (afd >= 0 && alink_wants_write(ct) ? POLLOUT : 0) },
		};
		if (poll(pfd, 2, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
			return;
		if (pfd[0].revents)
			return;
		if (pfd[1].revents & POLLOUT)
			alink_on_writable(ct);
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && alink_on_readable(ct) == -EPIPE)
			alink_close(ct);
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
	static int on = -1;
	if (on < 0)
		on = getenv("GODWIT_MIG_TRACE") != NULL;
	if (on) {
		char ts[36];
		gw_fmt_rfc3339(gw_now_real_ns(), ts);
		fprintf(stderr, "%s migration: %s\n", ts, what);
	}
}
