/* The destination end of a migration (docs/migration-protocol.md, "Destination"): accept one
 * connection, check that this host can honour the container's config (image by id, name,
 * disk), start QEMU with the same devices in -incoming defer mode, let it take the stream
 * from the socket, then wait for the source's log and COMMIT before the guest's output may
 * leave this host (the guest runs from QEMU's completion or switch, sealed, its output held;
 * a guest with a NIC stays paused until COMMIT). Any failure before COMMIT leaves nothing
 * behind. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "godwit/image.h"
#include "godwit/migproto.h"
#include "godwit/proc.h"
#include "godwit/hv_vm.h"
#include "godwit/knobs.h"
#include "godwit/util.h"
#include "migrate.h"

/* Wait for the source to connect; SIGTERM (from `rm -f`) ends the wait. */
static int accept_one(struct container *ct, int listen_fd, struct gw_err *err)
{
	for (;;) {
		int r = mig_await_peer(ct, listen_fd, -1, err);
		if (r < 0)
			return r;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
}

/* PREPARE: can this host honour the config? Fills ct->cfg and creates the disk. */
static int prepare(struct container *ct, json_object *msg, char *reason, size_t rlen,
		   struct gw_err *err)
{
	struct mig_config mc;
	int r = mig_config_from_json(msg, &mc, err);
	if (r < 0) {
		snprintf(reason, rlen, "bad-config");
		return r;
	}
	mig_config_free(&mc);
	json_object *c;
	if (!json_object_object_get_ex(msg, "container", &c)) {
		snprintf(reason, rlen, "bad-config");
		return gw_err_set(err, EPROTO, "CONFIG without the container's config");
	}
	struct ct_config in;
	if ((r = ct_config_from_json(c, &in, err)) < 0) {
		snprintf(reason, rlen, "bad-config");
		return r;
	}
	/* the peer's size stays inside what this host's operator allows (incoming --memory-max,
	 * --cpus-max; by default what the host has) */
	if (in.mem_bytes > ct->max_mem || in.cpus > ct->max_cpus) {
		snprintf(reason, rlen, "limits");
		r = in.mem_bytes > ct->max_mem
			    ? gw_err_set(err, E2BIG, "the container wants %llu MiB of memory; this "
					 "host allows %llu MiB (incoming --memory-max)",
					 (unsigned long long)(in.mem_bytes >> 20),
					 (unsigned long long)(ct->max_mem >> 20))
			    : gw_err_set(err, E2BIG, "the container wants %d CPUs; this host allows "
					 "%d (incoming --cpus-max)", in.cpus, ct->max_cpus);
		ct_config_free(&in);
		return r;
	}
	/* keep this host's name, kit and accelerator; take everything else from the source */
	snprintf(in.name, sizeof(in.name), "%s", ct->cfg.name);
	snprintf(in.accel, sizeof(in.accel), "%s", ct->cfg.accel);
	free(in.kernel);
	free(in.initrd);
	in.kernel = steal_ptr(ct->cfg.kernel);
	in.initrd = steal_ptr(ct->cfg.initrd);
	ct_config_free(&ct->cfg);
	ct->cfg = in;

	struct gw_image img = { 0 };
	if ((r = gw_image_resolve(ct->root, ct->cfg.image_id, &img, err)) < 0) {
		snprintf(reason, rlen, "image-missing");
		return gw_err_set(err, ENOENT, "image %s is not on this host (load it here first)",
				  ct->cfg.image_id);
	}
	/* the container's network, address and published ports, taken up here, sealed */
	json_object *net = NULL;
	json_object_object_get_ex(msg, "net", &net);
	if ((r = shim_net_take(ct, net, reason, rlen, err)) < 0) {
		gw_image_free(&img);
		return r;
	}
	/* its volumes, made blank here for the mirror to fill */
	if ((r = mig_dst_volumes(ct, msg, reason, rlen, err)) < 0) {
		gw_image_free(&img);
		return r;
	}
	struct statvfs sv;
	if (statvfs(ct->dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < (256ULL << 20)) {
		gw_image_free(&img);
		snprintf(reason, rlen, "no-space");
		return gw_err_set(err, ENOSPC, "less than 256 MiB free for the container's disk");
	}
	char *qargv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
			  img.base_disk, ct->disk_path, NULL };
	r = gw_run(qargv, err);
	gw_image_free(&img);
	if (r == 0)
		r = ct_config_save(ct->root, &ct->cfg, err);
	if (r < 0)
		snprintf(reason, rlen, "disk");
	return r;
}

/* PREPARE: ok, plus where the disk export listens and the token of a post-copy move's control
 * connection (docs/migration-protocol.md, "PREPARE"). */
static int send_prepare_nbd(struct mig_conn *mc, uint16_t nbd_port, const char token[33],
				 struct gw_err *err)
{
	char exp[64];
	snprintf(exp, sizeof(exp), "%s-%s", MIG_NBD_EXPORT, token);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "nbd_port", json_object_new_int(nbd_port));
	json_object_object_add(o, "nbd_export", json_object_new_string(exp));
	json_object_object_add(o, "token", json_object_new_string(token));
	int r = mig_send_json(mc, MIG_PREPARE, o, err);
	json_object_put(o);
	return r;
}

static int guest_running(struct container *ct)
{
	struct hv_vm_status st;
	return hv_vm_query_status(ct->qmp, &st, 5000, NULL) == 0 && st.running;
}

static int receive_commit(struct container *ct, struct mig_conn *mc, int early,
			  struct alink_release *rel, struct gw_err *err)
{
	/* the rest of the source's output log (the first part came before RAM_BEGIN) */
	int r = mig_recv_stream(mc, MIG_DISK_DATA, MIG_DISK_END, ct->log_fd, 1ULL << 32, err);
	if (r < 0)
		return r;
	json_object *o, *v;
	if ((r = mig_recv_json(mc, MIG_COMMIT, &o, err)) < 0)
		return r;
	const char *b64 = json_object_object_get_ex(o, "link", &v) ? json_object_get_string(v) : "";
	uint64_t len = 0;
	mig_json_u64(o, "link_len", &len, NULL);
	unsigned char *buf;
	size_t n;
	if (gw_b64_decode(b64, &buf, &n) < 0 || len != n) {
		free(buf);
		json_object_put(o);
		return gw_err_set(err, EPROTO, "COMMIT: bad agent link state");
	}
	json_object_put(o);
	ct->started = 1; /* the container process is already running in the guest */
	/* the source's mirror ended before the switch (pre-switchover); the export goes too,
	 * before our guest may run on: nobody else may write its disk from now on */
	r = mig_nbd_stop(ct, err);
	/* early resume: the guest already runs and its output waits in the hold; a paused
	 * guest (NIC): the link first, so RESYNC waits in the port for the guest, then cont */
	if (r == 0)
		r = alink_restore(ct, buf, (size_t)len, false, rel, err);
	/* an early-resumed guest runs already, unless the source had stopped it (offline):
	 * QEMU then keeps it paused, and the commit is what resumes it */
	if (r == 0 && (!early || !guest_running(ct))) {
		r = hv_vm_cont(ct->qmp, 5000, err);
		mig_trace("destination: guest resumed");
	}
	/* the source's guest is stopped for good: ours may be heard on the network now */
	if (r == 0)
		r = shim_net_unseal(ct, err);
	mig_trace("destination: COMMIT applied, held output logged");
	free(buf);
	return r;
}

/* One move into this host. */
struct dst_move {
	struct container *ct;
	int listen_fd;
	int fd;			/* the migration connection (QEMU's stream too) */
	struct mig_conn mc, cc;	/* ... and a post-copy move's control connection */
	struct mig_conn dc;	/* in TLS: the connection QEMU's stream takes (its own TLS) */
	struct mig_tls tls;	/* in TLS: mc's session */
	struct mig_conn *ctl;	/* where the messages after RAM_BEGIN go */
	char reason[64];	/* a refusal's reason code (PREPARE) */
	char token[33];		/* admits the control connection */
	uint16_t nbd_port;
	int postcopy;		/* the source set postcopy-ram */
	int channels;		/* QEMU's multifd channels (CONFIG's "channels"; 0: one stream) */
	struct mig_channels ch;
	int early;		/* the guest runs before COMMIT, its output held */
	int refused;		/* PREPARE said no: nothing more to tell the source */
	int ram_begun;
	struct alink_release rel;
};

/* CONFIG's capabilities (a new reference, or NULL), and whether they ask for post-copy. */
static json_object *config_caps(json_object *msg, int *postcopy)
{
	json_object *v, *pc, *caps = NULL;
	if (json_object_object_get_ex(msg, "caps", &v) && json_object_is_type(v, json_type_object))
		caps = json_object_get(v);
	*postcopy = caps && json_object_object_get_ex(caps, hv_mig_cap_name(HV_MIG_CAP_POSTCOPY_RAM),
						    &pc) && json_object_get_boolean(pc);
	return caps;
}

/* JOB_CONNECT: the source's connection. In TLS its certificate is checked before anything
 * is read; a connection that fails the handshake (another CA, no TLS, a port scanner) is
 * turned away and the listener waits on. */
static int dst_accept(struct dst_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	for (;;) {
		if ((m->fd = accept_one(ct, m->listen_fd, err)) < 0)
			return m->fd;
		mig_sock_tune(m->fd);
		mig_conn_init(&m->mc, m->fd, 30000);
		mig_conn_in_job(ct, &m->mc);
		struct gw_err e = { 0 };
		if (!ct->tls_dir || mig_tls_start(ct, &m->mc, NULL, &m->tls, &e) == 0)
			return 0;
		fprintf(stderr, "shim: a connection turned away: %s\n", e.msg);
		close(m->fd);
		m->fd = -1;
	}
}

/* HELLO and CONFIG; can this host honour it (prepare)? Then QEMU in incoming mode with the
 * source's capabilities and the disk's NBD export, and PREPARE's answer either way. */
static int dst_prepare(struct dst_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	uint64_t common;
	char peer[64];
	json_object *msg = NULL;
	job_set_phase(ct->job, JOB_CONFIG);
	int r = mig_hello(&m->mc, MIG_FEAT_OFFLINE | MIG_FEAT_LIVE | MIG_FEAT_XBZRLE |
				  MIG_FEAT_POSTCOPY, &common, peer, err);
	if (r == 0)
		r = mig_recv_json(&m->mc, MIG_CONFIG, &msg, err);
	if (r < 0)
		return r;
	mig_trace("destination: CONFIG received");
	job_set_phase(ct->job, JOB_PREPARE);
	r = prepare(ct, msg, m->reason, sizeof(m->reason), err);
	mig_trace("destination: overlay created");
	json_object *caps = config_caps(msg, &m->postcopy);
	json_object *v;
	if (json_object_object_get_ex(msg, "channels", &v)) {
		int64_t n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < 2 || n > MIG_CHANNELS_MAX ||
		    m->postcopy) {
			if (r == 0)
				r = gw_err_set(err, EPROTO, "CONFIG: bad \"channels\"");
			snprintf(m->reason, sizeof(m->reason), "unsupported");
		} else {
			m->channels = (int)n;
		}
	}
	json_object_put(msg);
	/* the guest resumes the moment QEMU has the state (early resume, its output held until
	 * COMMIT; in post-copy the source ended its disk mirror before the switch); a guest on a
	 * network runs with its tap sealed until COMMIT; one with another NIC that the world could
	 * hear from stays paused until COMMIT (docs/migration-protocol.md §2) */
	m->early = !ct->cfg.nic_mac[0] || ct->tap[0];
	if (r == 0)
		r = shim_vm_start(ct, 1, !m->early, err);
	mig_trace("destination: QEMU started");
	mig_qmp_serve_agent(ct, 1);
	/* in TLS: QEMU's credentials, for its stream and its NBD server */
	if (r == 0 && ct->tls_dir && (r = mig_tls_qemu(ct, NULL, err)) < 0)
		snprintf(m->reason, sizeof(m->reason), "tls");
	/* the source's capabilities, before migrate-incoming (post-copy needs both ends) */
	if (r == 0 && caps && (r = mig_set_caps(ct, caps, err)) < 0)
		snprintf(m->reason, sizeof(m->reason), "unsupported");
	if (r == 0 && m->channels) {
		struct hv_mig_params p = { .set = HV_MIG_P_MULTIFD_CHANNELS,
					   .multifd_channels = m->channels };
		if ((r = hv_mig_set_params(ct->qmp, &p, 5000, err)) < 0)
			snprintf(m->reason, sizeof(m->reason), "unsupported");
	}
	json_object_put(caps);
	/* the disk comes over NBD (the source's mirror), not in QEMU's stream */
	/* the move's token: it admits further connections and names the NBD exports */
	uint8_t rnd[16];
	if (r == 0 && getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		r = gw_err_sys(err, errno, "getrandom");
	for (size_t i = 0; r == 0 && i < sizeof(rnd); i++)
		snprintf(m->token + 2 * i, 3, "%02x", rnd[i]);
	if (r == 0 && (r = mig_nbd_export(ct, m->fd, m->token, &m->nbd_port, err)) < 0)
		snprintf(m->reason, sizeof(m->reason), "disk-export");
	if (r < 0) {
		shim_kill_qemu(ct);
		mig_send_prepare(&m->mc, m->reason, err->msg, NULL);
		m->refused = 1;
		return r;
	}
	return send_prepare_nbd(&m->mc, m->nbd_port, m->token, err);
}

/* A post-copy move's control connection, the output log so far (while the guest still runs
 * on the source), and RAM_BEGIN. */
static int dst_log_and_begin(struct dst_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	json_object *msg;
	int r = 0;
	job_set_phase(ct->job, JOB_MIRROR);
	/* in TLS the first connection stays godwit's: no second one for control */
	if (m->postcopy && !ct->tls_dir)
		r = mig_accept_control(ct, m->listen_fd, MIG_CONN_CONTROL, m->token, 30000,
				       &m->cc, err);
	/* the source mirrors the disk before it sends RAM_BEGIN: allow for that */
	m->mc.timeout_ms = 600000;
	if (r == 0)
		r = mig_recv_file(&m->mc, ct->log_path, 1ULL << 32, err);
	if (r == 0) {
		/* the log file was replaced under our append fd: reopen it */
		close(ct->log_fd);
		ct->log_fd = open(ct->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (ct->log_fd < 0)
			r = gw_err_sys(err, errno, "open %s", ct->log_path);
	}
	if (r == 0 && (r = mig_recv_json(&m->mc, MIG_RAM_BEGIN, &msg, err)) == 0) {
		json_object_put(msg);
		m->ram_begun = 1;
		if (m->postcopy && !ct->tls_dir)
			m->ctl = &m->cc;
	}
	/* in TLS QEMU's stream comes on a connection of its own (its channels: each on its own) */
	if (r == 0 && ct->tls_dir && !m->channels)
		r = mig_accept_control(ct, m->listen_fd, MIG_CONN_DATA, m->token, 30000, &m->dc,
				       err);
	return r;
}

/* QEMU takes the stream from the socket (we must not read it until the stream is complete)
 * until it holds the device state: completed, or postcopy-active after a switch. Then DONE. */
static int dst_stream(struct dst_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	enum hv_mig_status status = HV_MIG_NONE;
	int r = 0;
	job_set_phase(ct->job, JOB_STREAM);
	/* the port connected before the state loads, so the guest finds its host there */
	if (m->early)
		r = alink_hold(ct, err);
	if (r == 0)
		r = m->channels ? mig_dst_channels(ct, m->listen_fd, m->token, m->channels, &m->ch,
						   err)
				: mig_qemu_stream(ct, HV_MIG_IN, ct->tls_dir ? m->dc.fd : m->fd, 0,
						  err);
	if (r == 0)
		r = mig_wait_qemu_for(ct, 3600 * 1000,
				      m->postcopy ? HV_MIG_POSTCOPY_ACTIVE : HV_MIG_NONE, &status, err);
	if (r == 0 && status != HV_MIG_COMPLETED && status != HV_MIG_POSTCOPY_ACTIVE)
		r = err->code ? -err->code : gw_err_set(err, EIO, "QEMU's incoming migration %s",
							hv_mig_status_name(status));
	if (r < 0)
		return r;
	mig_channels_stop(&m->ch); /* QEMU has every byte */
	json_object *d = json_object_new_object();
	mig_trace("destination: QEMU completed");
	r = mig_send_json(m->ctl, MIG_DONE, d, err);
	json_object_put(d);
	return r;
}

static void dst_close(struct dst_move *m)
{
	mig_channels_stop(&m->ch);
	mig_tls_end(&m->tls);
	close(m->fd);
	if (m->cc.fd >= 0)
		close(m->cc.fd);
	if (m->dc.fd >= 0)
		close(m->dc.fd);
}

/* A failure before RUNNING: our QEMU goes first (once the source reads ABORT it may resume its
 * own copy), then ABORT; a refused PREPARE has told the source already. */
static int dst_undo(struct dst_move *m, int r, struct gw_err *err)
{
	if (!m->refused) {
		/* our QEMU goes before we tell the source we failed: once it reads ABORT it may
		 * resume its own copy, so ours must already be gone (never two running copies) */
		shim_kill_qemu(m->ct);
		alink_close(m->ct);
		mig_send_abort(m->ram_begun ? m->ctl : &m->mc, "destination-failed", err->msg, NULL);
	}
	/* the network taken up here, its address and ports given back */
	if (m->ct->net_leased)
		shim_net_leave(m->ct);
	mig_dst_volumes_drop(m->ct);
	dst_close(m);
	return r;
}

/* The container runs here: RUNNING (with when the guest's held output reached the world: the
 * pause a client sees), then, in post-copy, every page still to come (through a broken link
 * and `migrate --recover`), else the source's COMMIT_ACK (informational: a lost one changes
 * nothing). */
static void dst_running(struct dst_move *m)
{
	struct container *ct = m->ct;
	job_set_phase(ct->job, JOB_COMMITTED);
	shim_set_state(ct, CT_RUNNING, "");
	json_object *ok = json_object_new_object();
	json_object_object_add(ok, "held_reads", json_object_new_int64(m->rel.reads));
	if (m->rel.reads)
		json_object_object_add(ok, "held_first_rx_ns", json_object_new_int64(m->rel.first_rx_ns));
	json_object_object_add(ok, "released_ns", json_object_new_int64(m->rel.released_ns));
	mig_send_json(m->ctl, MIG_RUNNING, ok, NULL);
	json_object_put(ok);
	mig_trace("destination: RUNNING sent");
	if (m->postcopy) {
		struct gw_err e = { 0 };
		ct->access = SHIM_LIVE; /* the container runs here: exec and signals may come */
		job_set_phase(ct->job, JOB_POSTCOPY);
		if (mig_dst_postcopy_finish(ct, m->listen_fd, m->token, &e) < 0) {
			fprintf(stderr, "shim: %s\n", e.msg);
			shim_set_state(ct, CT_RUNNING, "post-copy failed: the guest is lost");
			/* the source would otherwise wait for a --recover that cannot come */
			mig_send_abort(m->ctl, "destination-failed", e.msg, NULL);
		}
	} else {
		json_object *msg;
		m->ctl->timeout_ms = 10000;
		if (mig_recv_json(m->ctl, MIG_COMMIT_ACK, &msg, NULL) == 0)
			json_object_put(msg);
	}
	dst_close(m);
}

static int dest_run(struct container *ct, int listen_fd, struct gw_err *err)
{
	struct dst_move m = { .ct = ct, .listen_fd = listen_fd, .cc = { .fd = -1 },
			      .dc = { .fd = -1 }, .reason = "failed" };
	job_set_phase(ct->job, JOB_CONNECT);
	int r = dst_accept(&m, err);
	if (r < 0)
		return r;
	m.ctl = &m.mc;
	r = dst_prepare(&m, err);
	if (r == 0)
		r = dst_log_and_begin(&m, err);
	if (r == 0)
		r = dst_stream(&m, err);
	if (r == 0) {
		job_set_phase(ct->job, JOB_HANDOVER);
		r = receive_commit(ct, m.ctl, m.early, &m.rel, err);
	}
	if (r < 0)
		return dst_undo(&m, r, err);
	dst_running(&m);
	return 0;
}

/* The destination's job: its end closes the listener; a failure leaves nothing (shim_main
 * removes the record once the loop ends). */
struct dst_job {
	struct container *ct;
	int listen_fd;
};

static int dst_job_run(void *arg, struct gw_err *err)
{
	struct dst_job *j = arg;
	struct container *ct = j->ct;
	ct->access = SHIM_EXCLUSIVE;
	int r = dest_run(ct, j->listen_fd, err);
	ct->access = SHIM_OPEN;
	mig_qmp_serve_agent(ct, 0);
	return r;
}

static void dst_job_done(void *arg, int r, struct gw_err *err)
{
	struct dst_job *j = arg;
	close(j->listen_fd);
	if (r < 0) {
		fprintf(stderr, "shim: incoming migration failed: %s\n", err->msg);
		j->ct->incoming_failed = 1;
		j->ct->done = 1;
	}
	free(j);
}

int mig_dest_start(struct container *ct, int listen_fd, struct gw_err *err)
{
	struct dst_job *j = calloc(1, sizeof(*j));
	if (!j)
		return gw_err_set(err, ENOMEM, "out of memory");
	*j = (struct dst_job){ .ct = ct, .listen_fd = listen_fd };
	int r = job_start(&ct->job, dst_job_run, dst_job_done, j, err);
	if (r < 0)
		free(j);
	return r;
}
