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
#include "godwit/mount.h"
#include "godwit/net.h"
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
	/* an event that came in with a command's reply waits in the client's queue: no new
	 * byte will wake a wait on the socket for it (seen: the destination learnt of QEMU's
	 * completion a whole wait late, 50 ms into the guest's pause) */
	int queued = 0;
	while (hv_mig_wait_event(ct->qmp, 0, NULL, NULL) == 0)
		queued = 1;
	if (queued)
		return;
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
					    HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER, HV_MIG_CAP_MULTIFD };

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

/* The disks of a move (docs/migration-protocol.md, "Disks"): the destination's QEMU exports
 * each over NBD, named after its drive ("disk0", the overlay; "vol0"..., the volumes), and
 * the source mirrors each into its export. */
int mig_disk_count(struct container *ct)
{
	int n = 0;
	while (ct->cfg.volumes && ct->cfg.volumes[n] && n < GW_MOUNTS_MAX)
		n++;
	return 1 + n;
}

void mig_disk_id(int i, char id[16])
{
	if (i == 0)
		snprintf(id, 16, "%s", MIG_NBD_EXPORT);
	else
		snprintf(id, 16, "vol%d", i - 1);
}

/* the export's id, the mirror's job and its target node, of disk i */
static void disk_names(int i, char exp[24], char job[24], char target[24])
{
	snprintf(exp, 24, "mig-exp%d", i);
	snprintf(job, 24, "%s%d", MIG_MIRROR_JOB, i);
	snprintf(target, 24, "mig-target%d", i);
}

/* An export's name: the disk's id and the move's token, so that a client must know the token
 * (PREPARE's, inside TLS when the move is) to name it */
static void export_name(int i, const char *token, char name[64])
{
	char id[16];
	mig_disk_id(i, id);
	snprintf(name, 64, "%s-%.32s", id, token);
}

static int export_disks(struct container *ct, const char *token, struct gw_err *err)
{
	for (int i = 0; i < mig_disk_count(ct); i++) {
		/* the node behind the drive (`-drive if=none,id=...` gives it a generated name) */
		char node[128], id[16], exp[24], job[24], target[24], name[64];
		mig_disk_id(i, id);
		disk_names(i, exp, job, target);
		export_name(i, token, name);
		int r = hv_block_node_of(ct->qmp, id, node, sizeof(node), 5000, err);
		if (r == 0)
			r = hv_block_export_add_nbd(ct->qmp, exp, node, name, 1, 5000, err);
		if (r < 0)
			return gw_err_prefix(err, "export %s over NBD", id);
	}
	return 0;
}

int mig_nbd_export(struct container *ct, int conn_fd, const char *token, uint16_t *port,
		   struct gw_err *err)
{
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
	int on = 1, r;
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
		return gw_err_sys(err, errno, "NBD listen socket");
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if ((r = hv_vm_getfd(ct->qmp, "nbd", lfd, 5000, err)) < 0)
		return r;
	/* one connection per disk */
	if ((r = hv_nbd_server_start_fd(ct->qmp, "nbd", mig_disk_count(ct),
					  ct->tls_dir ? HV_TLS_CREDS : NULL, 5000, err)) < 0)
		return gw_err_prefix(err, "start the NBD server");
	if ((r = export_disks(ct, token, err)) < 0)
		mig_nbd_stop(ct, NULL);
	return r;
}

int mig_nbd_stop(struct container *ct, struct gw_err *err)
{
	for (int i = 0; i < mig_disk_count(ct); i++) {
		char exp[24], job[24], target[24];
		disk_names(i, exp, job, target);
		hv_block_export_del(ct->qmp, exp, 1, 5000, NULL);
	}
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
		mig_await(ct, -1, 10);
	}
	return gw_err_set(err, ETIMEDOUT, "NBD export still open after 5 s");
}

static int mirror_one(struct container *ct, int i, const char *host, uint16_t port,
		      const char *token, struct gw_err *err)
{
	char id[16], exp[24], job[24], target[24], name[64];
	mig_disk_id(i, id);
	disk_names(i, exp, job, target);
	export_name(i, token, name);
	int r = hv_blockdev_add_nbd(ct->qmp, target, host, port, name,
				    ct->tls_dir ? HV_TLS_CREDS : NULL, 5000, err);
	if (r < 0)
		return gw_err_prefix(err, "NBD connection to %s port %u for %s", host, port, id);
	struct hv_mirror m = {
		.job_id = job,
		.device = id,
		.target = target,
		/* the overlay: only its own blocks, the base is the image, already on the
		 * destination; a volume has no base: all of it */
		.sync = i == 0 ? HV_MIRROR_SYNC_TOP : HV_MIRROR_SYNC_FULL,
		/* active mirroring: once in sync, each guest write reaches both disks before it
		 * completes, so ending the mirror inside the hand-over's pause has nothing left to
		 * copy */
		.copy_mode = HV_MIRROR_WRITE_BLOCKING,
	};
	if ((r = hv_blockdev_mirror(ct->qmp, &m, 5000, err)) < 0) {
		hv_blockdev_del(ct->qmp, target, 5000, NULL);
		return gw_err_prefix(err, "mirror %s to %s port %u", id, host, port);
	}
	return 0;
}

int mig_mirror_start(struct container *ct, const char *host, uint16_t port, const char *token,
		     struct gw_err *err)
{
	for (int i = 0; i < mig_disk_count(ct); i++) {
		int r = mirror_one(ct, i, host, port, token, err);
		if (r < 0) {
			mig_mirror_cancel(ct, 1, NULL);
			return r;
		}
	}
	return 0;
}

/* The mirror jobs' state: 1 all ready, 0 not yet, -ENOENT one is gone (or none is left, with
 * gone_ok: after a cancel). */
static int mirror_state(struct container *ct, int gone_ok, struct gw_err *err)
{
	int ready = 1, gone = 0, n = mig_disk_count(ct);
	for (int i = 0; i < n; i++) {
		char exp[24], job[24], target[24];
		disk_names(i, exp, job, target);
		int r = hv_block_job_ready(ct->qmp, job, 5000, err);
		if (r == -ENOENT && !gone_ok)
			return r;
		if (r == -ENOENT)
			gone++;
		else if (r < 0)
			return r;
		else
			ready &= r;
	}
	return gone == n ? -ENOENT : gone_ok ? 0 : ready;
}

int mig_mirror_wait_ready(struct container *ct, int timeout_ms, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int r = mirror_state(ct, 0, err);
		if (r == 1)
			return 0;
		if (r == -ENOENT)
			return gw_err_set(err, EIO, "a disk mirror to the destination ended early");
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

static void mirror_targets_del(struct container *ct)
{
	for (int i = 0; i < mig_disk_count(ct); i++) {
		char exp[24], job[24], target[24];
		disk_names(i, exp, job, target);
		hv_blockdev_del(ct->qmp, target, 5000, NULL);
	}
}

int mig_mirror_cancel(struct container *ct, int force, struct gw_err *err)
{
	for (int i = 0; i < mig_disk_count(ct); i++) {
		char exp[24], job[24], target[24];
		disk_names(i, exp, job, target);
		int r = hv_block_job_cancel(ct->qmp, job, force, 5000, err);
		if (r < 0 && hv_block_job_ready(ct->qmp, job, 5000, NULL) != -ENOENT)
			return gw_err_prefix(err, "cancel the disk mirror %s", job);
	}
	/* a ready mirror cancelled without force first copies what is left, then ends; this
	 * runs inside the hand-over's pause, so ask often. Their NBD connections go with them. */
	for (int i = 0; i < 30000; i++) {
		int r = mirror_state(ct, 1, err);
		if (r == -ENOENT) {
			mirror_targets_del(ct);
			return 0;
		}
		if (r < 0)
			return r;
		mig_await(ct, -1, 2);
	}
	return gw_err_set(err, ETIMEDOUT, "disk mirror still running 60 s after its cancel");
}

void mig_await(struct container *ct, int fd, int timeout_ms)
{
	job_wait(ct->job, fd, POLLIN, -1, timeout_ms);
}

static int conn_wait(void *ct, int fd, short events, int timeout_ms)
{
	return job_wait(((struct container *)ct)->job, fd, events, -1, timeout_ms);
}

void mig_conn_in_job(struct container *ct, struct mig_conn *c)
{
	c->wait = conn_wait;
	c->wait_arg = ct;
}

int mig_connect(struct container *ct, const char *uri, struct gw_err *err)
{
	int fd = net_connect_tcp_wait(uri, 10000, conn_wait, ct, err);
	if (fd >= 0)
		mig_sock_tune(fd);
	return fd;
}

int mig_await_peer(struct container *ct, int listen_fd, int timeout_ms, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int64_t left = (deadline - gw_now_mono_ns()) / 1000000;
		if (timeout_ms >= 0 && left <= 0)
			return 0;
		int w = job_wait(ct->job, listen_fd, POLLIN, ct->signal_fd,
				 timeout_ms < 0 ? -1 : (int)left + 1);
		struct signalfd_siginfo si;
		/* a qemu-img we ran leaves a SIGCHLD behind: only SIGTERM/SIGINT stop us */
		if (w == 2 && read(ct->signal_fd, &si, sizeof(si)) == sizeof(si) &&
		    si.ssi_signo != SIGCHLD)
			return gw_err_set(err, EINTR, "stopped while waiting for the source");
		if (w == 1)
			return 1;
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
