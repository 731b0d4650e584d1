/* The source end of a migration (docs/migration-protocol.md, "Source"), phase by phase:
 * connect; HELLO, CONFIG and the destination's PREPARE; the disk mirror into its NBD export;
 * RAM_BEGIN and QEMU's stream on the same TCP connection, steered by the policy
 * (mig_source_stream.c); the two-step hand-over: the destination says DONE (it holds the whole
 * state), we send the log and COMMIT (the point of no return), it resumes and says RUNNING;
 * after a post-copy switch, the pages still to come. Until COMMIT is sent, any failure resumes
 * the source as it was (src_undo). */
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "godwit/migproto.h"
#include "godwit/net.h"
#include "godwit/qmp.h"
#include "godwit/util.h"
#include "mig_source.h"

/* One move from this host. */
struct src_move {
	struct container *ct;
	struct shim_client *cl;
	struct src_opts o;
	enum job_phase phase;	/* where it is; a failure is undone according to it (src_undo) */
	int64_t t0;
	int fd;			/* the migration connection (QEMU's stream too) */
	struct mig_conn mc, cc;	/* ... and a post-copy move's control connection */
	struct mig_conn dc;	/* in TLS: the connection QEMU's stream takes (its own TLS) */
	struct mig_channels ch;	/* QEMU's channels, when o.channels (mig_channels.c) */
	struct mig_tls tls;	/* in TLS: mc's session */
	char host[256];		/* the destination's, from the URI */
	struct mig_conn *ctl;	/* where the messages after RAM_BEGIN go */
	char token[33];		/* admits the control connection */
	uint16_t nbd_port;
	struct pol_setup ps;
	struct pol_state pst;
	json_object *actions;
	struct hv_mig_stats q;	/* QEMU's last figures */
	off_t log_sent;		/* the output log up to here went before RAM_BEGIN */
	int mirroring, ram_sent, went_postcopy, committed;
	int64_t held_first_ns, released_ns, held_reads; /* RUNNING's word on the held output */
};

/* What `godwit migrate --status` reads: the latest figures of a migration, replaced
 * atomically (ROOT/containers/NAME/migration.json): also read when no shim answers. */
void mig_publish_status(struct container *ct, json_object *d)
{
	cleanup_free char *path = ct_path(ct->root, ct->cfg.name, "migration.json");
	const char *txt = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
	if (path)
		gw_write_file(path, txt, strlen(txt), 0600, NULL);
}

static void publish_end(struct container *ct, const char *status, const char *uri,
			json_object *result, const char *error)
{
	json_object *d = json_object_new_object();
	json_object_object_add(d, "status", json_object_new_string(status));
	json_object_object_add(d, "uri", json_object_new_string(uri));
	if (result)
		json_object_object_add(d, "result", json_object_get(result));
	if (error)
		json_object_object_add(d, "error", json_object_new_string(error));
	mig_publish_status(ct, d);
	json_object_put(d);
}

/* The output log travels in two parts: what was logged before RAM_BEGIN goes first, while the
 * guest still runs (send_log); only what came after it goes inside the pause, with COMMIT. */
static int send_log(struct container *ct, struct mig_conn *mc, off_t from, off_t *end,
		    struct gw_err *err)
{
	cleanup_close int lf = open(ct->log_path, O_RDONLY | O_CLOEXEC);
	if (lf < 0)
		return gw_err_sys(err, errno, "open %s", ct->log_path);
	if (lseek(lf, from, SEEK_SET) < 0)
		return gw_err_sys(err, errno, "seek %s", ct->log_path);
	int r = mig_send_stream(mc, MIG_DISK_DATA, MIG_DISK_END, lf, err);
	if (r == 0 && end)
		*end = lseek(lf, 0, SEEK_CUR);
	return r;
}

static int send_commit(struct container *ct, struct mig_conn *mc, off_t log_sent,
		       struct gw_err *err)
{
	uint8_t *link = NULL;
	size_t len = 0;
	int r = alink_save(ct, &link, &len, err);
	if (r < 0)
		return r;
	char *b64 = gw_b64_encode(link, len);
	free(link);
	if (!b64)
		return gw_err_set(err, ENOMEM, "out of memory");
	/* the rest of the output log first, so the destination's `logs` continue without a gap */
	r = send_log(ct, mc, log_sent, NULL, err);
	if (r == 0) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "link", json_object_new_string(b64));
		json_object_object_add(o, "link_len", json_object_new_int64((int64_t)len));
		r = mig_send_json(mc, MIG_COMMIT, o, err);
		json_object_put(o);
	}
	free(b64);
	return r;
}

/* PREPARE also carries the NBD port of the destination's disk export and the token that
 * admits a post-copy move's control connection (docs/migration-protocol.md, "PREPARE"). */
static int recv_prepare_nbd(struct mig_conn *mc, uint16_t *port, char token[33],
				 struct gw_err *err)
{
	json_object *o;
	int ok = 0, r = mig_recv_json(mc, MIG_PREPARE, &o, err);
	if (r < 0)
		return r;
	if ((r = mig_json_bool(o, "ok", &ok, err)) == 0 && !ok) {
		char reason[64] = "unspecified", msg[512] = "";
		mig_json_str(o, "reason", reason, sizeof(reason), NULL);
		mig_json_str(o, "message", msg, sizeof(msg), NULL);
		r = gw_err_set(err, EACCES, "destination refused: %s: %s", reason, msg);
	}
	uint64_t p = 0;
	if (r == 0 && (r = mig_json_u64(o, "nbd_port", &p, err)) == 0 && (p == 0 || p > 65535))
		r = gw_err_set(err, EPROTO, "PREPARE: nbd_port out of range");
	if (r == 0)
		r = mig_json_str(o, "token", token, 33, err);
	json_object_put(o);
	*port = (uint16_t)p;
	return r < 0 ? gw_err_prefix(err, "PREPARE") : 0;
}

/* Before anything moves: the container runs, and its QEMU can migrate a TCG guest safely. */
static int src_check(struct container *ct, const struct src_opts *o, struct gw_err *err)
{
	if (ct->st.state != CT_RUNNING)
		return gw_err_set(err, EINVAL, "container is %s, not running",
				  ct_state_name(ct->st.state));
	int major = 0, minor = 0;
	if (!o->offline && ct->accel == HV_ACCEL_TCG &&
	    qmp_qemu_version(ct->qmp, &major, &minor) == 0 && major < HV_TCG_MIGRATE_MIN_MAJOR)
		return gw_err_set(err, ENOTSUP, "live migration under TCG needs QEMU %d.0 or newer: "
				  "this container runs on QEMU %d.%d, which loses guest writes while "
				  "it migrates a TCG guest (fixed upstream in 9.0); install a newer "
				  "QEMU (scripts/deps.sh) or move it stopped with --offline",
				  HV_TCG_MIGRATE_MIN_MAJOR, major, minor);
	/* every volume readable here: CONFIG names each with its size */
	struct mig_config mc;
	return mig_src_volumes(ct, &mc, err);
}

/* The move enters phase p: the job shows it (`migrate --status`), src_undo follows it. */
static void src_enter(struct src_move *m, enum job_phase p)
{
	m->phase = p;
	job_set_phase(m->ct->job, p);
}

/* JOB_CONNECT: the connection (in TLS: the handshake, and QEMU's credentials); then the
 * container is `migrating`. */
static int src_connect(struct src_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	char port[16];
	src_enter(m, JOB_CONNECT);
	mig_trace("source: connecting");
	int r = net_parse_tcp(m->o.uri, m->host, port, err);
	if (r < 0 || (m->fd = mig_connect(ct, m->o.uri, err)) < 0)
		return r < 0 ? r : m->fd;
	mig_conn_init(&m->mc, m->fd, 30000);
	mig_conn_in_job(ct, &m->mc);
	if (ct->tls_dir)
		r = mig_tls_start(ct, &m->mc, m->host, &m->tls, err);
	if (r == 0)
		r = mig_tls_qemu(ct, m->host, err);
	if (r < 0) {
		mig_tls_end(&m->tls);
		close(m->fd);
		m->fd = -1;
		return r;
	}
	char why[200];
	int hints = src_hints(ct, &m->o, why, sizeof(why));
	pol_initial(&m->o.targets, &m->ps, &m->pst);
	shim_set_state(ct, CT_MIGRATING, m->o.uri);
	/* from now on the control API may ask things of this move (control_migrate.c) */
	ct->asks = (struct mig_asks){ .source = 1, .capable = m->o.postcopy != PC_NEVER };
	publish_end(ct, "setup", m->o.uri, NULL, NULL);
	m->ctl = &m->mc;
	m->actions = json_object_new_array();
	if (why[0])
		src_action(m->actions, 0, hints ? "free-page-hints" : "postcopy-armed", why);
	hv_mig_stats_parse(NULL, &m->q, NULL); /* none yet */
	src_enter(m, JOB_CONFIG);
	return 0;
}

/* JOB_CONFIG, JOB_PREPARE: HELLO, CONFIG, and the destination's PREPARE (it starts its QEMU meanwhile,
 * while the guest's output keeps flowing here). */
static int src_negotiate(struct src_move *m, struct gw_err *err)
{
	uint64_t common;
	char peer[64];
	int r = mig_hello(&m->mc, MIG_FEAT_OFFLINE | MIG_FEAT_LIVE | MIG_FEAT_XBZRLE |
				  (m->o.postcopy ? MIG_FEAT_POSTCOPY : 0), &common, peer, err);
	if (r == 0 && m->o.postcopy && !(common & MIG_FEAT_POSTCOPY))
		r = gw_err_set(err, ENOTSUP, "the destination does not offer post-copy");
	if (r == 0) {
		json_object *cfg = src_config_msg(m->ct, &m->o, &m->ps);
		r = mig_send_json(&m->mc, MIG_CONFIG, cfg, err);
		json_object_put(cfg);
	}
	if (r == 0) {
		src_enter(m, JOB_PREPARE);
		r = recv_prepare_nbd(&m->mc, &m->nbd_port, m->token, err);
	}
	if (r == 0)
		mig_trace("source: PREPARE received");
	return r;
}

/* JOB_MIRROR: the disk first: mirror the overlay into the destination's NBD export until the
 * two are in sync; the mirror then keeps them in sync while RAM moves, and ends at
 * pre-switchover (mig_source_stream.c). A post-copy move opens its control connection too. */
static int src_mirror(struct src_move *m, struct gw_err *err)
{
	int r = 0;
	src_enter(m, JOB_MIRROR);
	/* in TLS the first connection stays godwit's: no second one for control */
	if (m->o.postcopy && !m->ct->tls_dir) {
		r = mig_open_control(m->ct, m->o.uri, MIG_CONN_CONTROL, m->token, &m->cc, err);
		mig_trace("source: control connection open");
	}
	if (r == 0 && (r = mig_mirror_start(m->ct, m->host, m->nbd_port, m->token, err)) == 0) {
		m->mirroring = 1;
		mig_trace("source: disk mirror started");
		r = mig_mirror_wait_ready(m->ct, (int)(m->o.targets.max_total_ns / 1000000),
					  err);
		mig_trace("source: disk mirror ready");
	}
	/* an offline move stops the guest here: what follows copies a still image */
	if (r == 0 && m->o.offline)
		r = hv_vm_stop(m->ct->qmp, 5000, err);
	return r;
}

/* JOB_STREAM: the output log so far and RAM_BEGIN, then QEMU's stream until it completed or
 * switched to post-copy. */
static int src_stream_phase(struct src_move *m, struct gw_err *err)
{
	int r = send_log(m->ct, &m->mc, 0, &m->log_sent, err);
	if (r == 0) {
		json_object *b = json_object_new_object();
		r = mig_send_json(&m->mc, MIG_RAM_BEGIN, b, err);
		json_object_put(b);
	}
	if (r < 0)
		return r;
	m->ram_sent = 1;
	src_enter(m, JOB_STREAM);
	/* QEMU's stream: on this connection, or in TLS on one of its own (QEMU's TLS), the first
	 * staying godwit's; a plain post-copy move's messages go on its control connection.
	 * QEMU's channels (multifd) each take a connection of their own (mig_channels.c) */
	struct src_sink sink = { .fd = m->fd, .token = m->token, .ch = &m->ch };
	if (m->o.channels) {
		/* the first connection stays godwit's */
	} else if (m->ct->tls_dir) {
		r = mig_open_control(m->ct, m->o.uri, MIG_CONN_DATA, m->token, &m->dc, err);
		sink.fd = m->dc.fd;
	} else if (m->o.postcopy) {
		m->ctl = &m->cc;
	}
	if (r == 0)
		r = src_stream(m->ct, m->cl, &m->o, &m->ps, &m->pst, &sink, &m->mirroring,
			       m->actions, &m->q, err);
	if (r > 0) {
		r = 0; /* postcopy-active */
		m->went_postcopy = 1;
	}
	if (r == 0 && m->mirroring)
		r = gw_err_set(err, EIO, "QEMU switched over without waiting for the disk mirror");
	return r;
}

/* RUNNING may say when the destination released the guest's held output (its clock;
 * optional: a peer that does not say is no error). */
static void read_running(struct src_move *m, json_object *running)
{
	uint64_t a = 0, b = 0, n = 0;
	if (mig_json_u64(running, "released_ns", &b, NULL) == 0 && b &&
	    mig_json_u64(running, "held_reads", &n, NULL) == 0 &&
	    (!n || (mig_json_u64(running, "held_first_rx_ns", &a, NULL) == 0 && a && a <= b))) {
		m->held_reads = (int64_t)n;
		m->held_first_ns = (int64_t)a;
		m->released_ns = (int64_t)b;
	}
}

/* JOB_HANDOVER, JOB_COMMITTED: QEMU stopped the guest for the last copy (or the switch to post-copy); wait
 * until the destination has the device state (DONE), send the log's tail and COMMIT, and wait
 * for RUNNING. */
static int src_handover(struct src_move *m, struct gw_err *err)
{
	json_object *o;
	src_enter(m, JOB_HANDOVER);
	m->ctl->timeout_ms = 60000;
	/* the wait for DONE takes in the guest's last output (the loop serves the link), so
	 * alink_save finds little to wait for */
	mig_trace("source: QEMU completed, waiting for DONE");
	int r = mig_recv_json(m->ctl, MIG_DONE, &o, err);
	mig_trace("source: DONE received");
	if (r < 0)
		return r;
	/* the destination's QEMU has every byte: the channels' relays may go */
	mig_channels_stop(&m->ch);
	json_object_put(o);
	r = send_commit(m->ct, m->ctl, m->log_sent, err);
	mig_trace("source: log tail and COMMIT sent");
	if (r < 0)
		return r;
	m->committed = 1;
	src_enter(m, JOB_COMMITTED);
	r = mig_recv_json(m->ctl, MIG_RUNNING, &o, err);
	mig_trace("source: RUNNING received");
	if (r == 0) {
		read_running(m, o);
		json_object_put(o);
	} else if (r == -ECONNABORTED) {
		/* the destination says it could not resume and has killed its copy, so the one
		 * copy left is ours: take the container back */
		m->committed = 0;
		src_enter(m, JOB_HANDOVER);
	} else {
		gw_err_prefix(err, "committed, but the destination did not confirm that it runs; "
			      "the source stays paused");
	}
	return r;
}

/* JOB_POSTCOPY: the destination runs and pulls the pages it lacks from our QEMU: we may go
 * only once QEMU has sent them all; a broken link waits for `migrate --recover`. */
static int src_postcopy_end(struct src_move *m, struct gw_err *err)
{
	src_enter(m, JOB_POSTCOPY);
	int r = mig_src_postcopy_finish(m->ct, m->ctl, m->token, err);
	mig_trace("source: post-copy finished");
	if (r < 0)
		gw_err_prefix(err, "post-copy failed after the destination resumed: its guest is lost");
	return r;
}

static void src_close(struct src_move *m)
{
	mig_channels_stop(&m->ch);
	mig_tls_end(&m->tls);
	if (m->fd >= 0)
		close(m->fd);
	if (m->cc.fd >= 0)
		close(m->cc.fd);
	if (m->dc.fd >= 0)
		close(m->dc.fd);
}

/* A failure, undone as its phase requires (docs/migration-protocol.md §4): before COMMIT the
 * source owns the container: it tells the destination (ABORT), ends what its phase started and
 * runs on; after it, it stays paused (the outcome is unknown, or the guest is lost after a
 * post-copy switch). One function per phase; each undoes its own step, then the earlier
 * phases'. */
static void undo_prepare(struct src_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	mig_send_abort(m->ram_sent ? m->ctl : &m->mc, "source-failed", err->msg, NULL);
	src_cancel_qemu(ct);
	alink_set_mode(ct, ALINK_LIVE);
	hv_vm_cont(ct->qmp, 5000, NULL);
	/* a destination that resumed and failed after COMMIT may have been heard: the segment
	 * learns again that the guest is here */
	if (ct->tap[0])
		hv_vm_announce(ct->qmp, 5000, NULL);
	shim_set_state(ct, CT_RUNNING, "");
}

/* also the stream's and the hand-over's before COMMIT: QEMU's migration is cancelled
 * (undo_prepare) and the mirror, if it still runs */
static void undo_mirror(struct src_move *m, struct gw_err *err)
{
	/* an offline move stopped the guest at the end of this phase: undo_prepare resumes it */
	if (m->mirroring)
		mig_mirror_cancel(m->ct, 1, NULL);
	m->mirroring = 0;
	undo_prepare(m, err);
}

static void undo_committed(struct src_move *m, struct gw_err *err)
{
	(void)err;
	shim_set_state(m->ct, CT_PAUSED, m->went_postcopy
		       ? "post-copy failed, the guest is lost (godwit rm -f removes it)"
		       : "migration outcome unknown");
}

static void (*const src_undo_for[])(struct src_move *, struct gw_err *) = {
	[JOB_CONFIG] = undo_prepare,	[JOB_PREPARE] = undo_prepare,
	[JOB_MIRROR] = undo_mirror,	[JOB_STREAM] = undo_mirror,
	[JOB_HANDOVER] = undo_mirror,	[JOB_COMMITTED] = undo_committed,
	[JOB_POSTCOPY] = undo_committed,
};

static int src_undo(struct src_move *m, struct gw_err *err)
{
	struct container *ct = m->ct;
	if ((unsigned)m->phase < sizeof(src_undo_for) / sizeof(src_undo_for[0]) &&
	    src_undo_for[m->phase])
		src_undo_for[m->phase](m, err);
	src_close(m);
	json_object_put(m->actions);
	gw_err_prefix(err, "migrate %s to %s", ct->cfg.name, m->o.uri);
	publish_end(ct, m->committed ? "unknown" : "failed", m->o.uri, NULL, err->msg);
	return -err->code;
}

/* The figures of a move that ended well (`migrate --json`, migration.json). */
static json_object *src_result(struct src_move *m)
{
	json_object *res = json_object_new_object();
	json_object_object_add(res, "total_ms", json_object_new_int64((gw_now_mono_ns() - m->t0) / 1000000));
	json_object_object_add(res, "qemu_total_ms", json_object_new_int64((int64_t)m->q.total_time_ms));
	json_object_object_add(res, "downtime_ms", json_object_new_int64((int64_t)m->q.downtime_ms));
	json_object_object_add(res, "bytes", json_object_new_int64((int64_t)m->q.transferred));
	json_object_object_add(res, "rounds", json_object_new_int64((int64_t)m->q.dirty_sync_count));
	/* the connections QEMU's stream took: one, or its channels as relayed */
	json_object_object_add(res, "channels", json_object_new_int(m->ch.n ? m->ch.n : 1));
	/* what happened: a move allowed to switch that finished in pre-copy is "live" */
	json_object_object_add(res, "kind", json_object_new_string(m->o.offline	? "offline"
								   : m->went_postcopy ? "postcopy"
										      : "live"));
	json_object_object_add(res, "actions", m->actions);
	m->actions = NULL;
	if (m->released_ns) {
		/* the guest ran again (its first held output arrived) and the world saw it
		 * (the held output logged and sent on), on the destination's clock */
		char ts[36];
		json_object_object_add(res, "held_reads", json_object_new_int64(m->held_reads));
		if (m->held_first_ns) {
			gw_fmt_rfc3339(m->held_first_ns, ts);
			json_object_object_add(res, "held_output_first_rx", json_object_new_string(ts));
		}
		gw_fmt_rfc3339(m->released_ns, ts);
		json_object_object_add(res, "held_output_released", json_object_new_string(ts));
	}
	return res;
}

static int source_run(struct container *ct, struct shim_client *cl, json_object *args,
		      json_object **result, struct gw_err *err)
{
	struct src_move m = { .ct = ct, .cl = cl, .fd = -1, .cc = { .fd = -1 }, .dc = { .fd = -1 },
			      .t0 = gw_now_mono_ns() };
	int r = src_parse_opts(ct, args, &m.o, err);
	/* this move's TLS, whatever brought the container here (an incoming move's TLS) */
	free(ct->tls_dir);
	ct->tls_dir = NULL;
	if (r == 0 && m.o.tls_dir && !(ct->tls_dir = strdup(m.o.tls_dir)))
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = src_check(ct, &m.o, err);
	if (r < 0)
		return r;
	if ((r = src_connect(&m, err)) < 0)
		return gw_err_prefix(err, "migrate %s to %s", ct->cfg.name, m.o.uri);
	r = src_negotiate(&m, err);
	if (r == 0)
		r = src_mirror(&m, err);
	if (r == 0)
		r = src_stream_phase(&m, err);
	if (r == 0)
		r = src_handover(&m, err);
	if (r == 0 && m.went_postcopy)
		r = src_postcopy_end(&m, err);
	if (r < 0)
		return src_undo(&m, err);
	/* the final figures: QEMU says "completed" a moment before it has filled in its total
	 * time and downtime, and a post-copy move ends long after the last sample */
	struct hv_mig_stats fin;
	if (hv_mig_query(ct->qmp, &fin, 5000, NULL) == 0)
		m.q = fin;
	json_object *empty = json_object_new_object();
	mig_send_json(m.ctl, MIG_COMMIT_ACK, empty, NULL);
	json_object_put(empty);
	src_close(&m);
	*result = src_result(&m);
	publish_end(ct, "completed", m.o.uri, *result, NULL);
	/* committed and confirmed: the destination runs the container; ours goes */
	shim_set_state(ct, CT_MIGRATED, m.o.uri);
	hv_vm_quit(ct->qmp, 5000, NULL);
	/* its tap, published ports and address are the destination's now; its volumes too */
	shim_net_leave(ct);
	mig_src_volumes_gone(ct);
	return 0;
}

int mig_source_run(struct container *ct, struct shim_client *cl, json_object *args,
		   json_object **result, struct gw_err *err)
{
	if (ct->cfg.netns)
		return gw_err_set(err, ENOTSUP, "container %s lives in a network namespace of this "
				  "host's (godwit-runtime): it cannot move", ct->cfg.name);
	mig_qmp_serve_agent(ct, 1);
	ct->access = SHIM_EXCLUSIVE;
	int r = source_run(ct, cl, args, result, err);
	ct->access = SHIM_OPEN;
	free(ct->tls_dir); /* the move's (source_run) */
	ct->tls_dir = NULL;
	mig_qmp_serve_agent(ct, 0);
	return r;
}
