/* The source end of a migration (docs/migration-protocol.md, "Source"): handshake, CONFIG and
 * the destination's PREPARE, then QEMU's migration stream on the same TCP connection (the
 * socket is handed to QEMU with getfd + fd:), steered by the policy (policy.c), then the
 * two-step hand-over: the destination says DONE (it holds the whole state, paused), we send
 * the log and COMMIT (the point of no return), it resumes and says RUNNING, we quit. Until
 * COMMIT is sent, any failure resumes the source as it was. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "godwit/migproto.h"
#include "godwit/net.h"
#include "godwit/policy.h"
#include "godwit/hv_vm.h"
#include "godwit/qmp.h"
#include "godwit/util.h"
#include "migrate.h"

/* How a live move may use post-copy: never (--no-postcopy, --offline), switch after the first
 * full pass (--postcopy), or when the policy says (the default). Every move carries the disk
 * the same way: mirrored into the destination's NBD export (QEMU 9.1 removed block migration). */
enum src_postcopy { PC_NEVER = 0, PC_AFTER_FIRST_PASS, PC_POLICY };

struct src_opts {
	const char *uri;
	int offline;
	enum src_postcopy postcopy;
	struct pol_targets targets;
};

static int parse_opts(struct container *ct, json_object *args, struct src_opts *o,
		      struct gw_err *err)
{
	json_object *v;
	memset(o, 0, sizeof(*o));
	pol_targets_default(&o->targets, ct->cfg.mem_bytes);
	if (!args || !json_object_object_get_ex(args, "uri", &v) ||
	    !json_object_is_type(v, json_type_string))
		return gw_err_set(err, EINVAL, "missing \"uri\"");
	o->uri = json_object_get_string(v);
	if (json_object_object_get_ex(args, "offline", &v))
		o->offline = json_object_get_boolean(v);
	if (json_object_object_get_ex(args, "max_downtime_ms", &v)) {
		int64_t ms = json_object_get_int64(v);
		if (ms < 1 || ms > 60000)
			return gw_err_set(err, EINVAL, "max downtime out of range (1 ms to 60 s)");
		o->targets.max_downtime_ns = ms * 1000000;
	}
	if (json_object_object_get_ex(args, "bandwidth", &v))
		o->targets.bandwidth_cap = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(args, "max_total_s", &v)) {
		int64_t s = json_object_get_int64(v);
		if (s < 1 || s > 86400)
			return gw_err_set(err, EINVAL, "max total time out of range");
		o->targets.max_total_ns = s * 1000000000LL;
	}
	o->postcopy = PC_POLICY;
	if (json_object_object_get_ex(args, "postcopy", &v) && json_object_get_boolean(v))
		o->postcopy = PC_AFTER_FIRST_PASS;
	else if (o->offline || (json_object_object_get_ex(args, "no_postcopy", &v) &&
				json_object_get_boolean(v)))
		o->postcopy = PC_NEVER;
	if (o->postcopy && o->offline)
		return gw_err_set(err, EINVAL, "post-copy is for live moves, not --offline");
	/* post-copy needs postcopy-ram on both ends from the start (and the control connection
	 * it brings), so the policy may only switch in a move set up for it */
	o->targets.allow_postcopy = o->postcopy != PC_NEVER;
	return 0;
}

/* The capabilities the source sets (*caps, MIG_SRC_CAPS of them); CONFIG carries them so the
 * destination sets the same. */
#define MIG_SRC_CAPS 5
static void caps_list(const struct pol_setup *ps, int offline, int postcopy,
		      struct hv_mig_cap_state caps[MIG_SRC_CAPS])
{
	caps[0] = (struct hv_mig_cap_state){ HV_MIG_CAP_XBZRLE, ps->cap_xbzrle && !offline };
	caps[1] = (struct hv_mig_cap_state){ HV_MIG_CAP_AUTO_CONVERGE,
					     ps->cap_auto_converge && !offline };
	caps[2] = (struct hv_mig_cap_state){ HV_MIG_CAP_EVENTS, 1 };
	caps[3] = (struct hv_mig_cap_state){ HV_MIG_CAP_POSTCOPY_RAM, postcopy && !offline };
	/* every move's disk rides a mirror that must end while the guest is stopped and before
	 * the destination's guest runs: QEMU waits for us in pre-switchover */
	caps[4] = (struct hv_mig_cap_state){ HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER, 1 };
}

static int set_cap_and_params(struct container *ct, const struct pol_setup *ps, int offline,
			      int postcopy, struct gw_err *err)
{
	struct hv_mig_cap_state caps[MIG_SRC_CAPS];
	caps_list(ps, offline, postcopy, caps);
	int r = hv_mig_set_caps(ct->qmp, caps, MIG_SRC_CAPS, 5000, err);
	if (r < 0)
		return r;
	/* 0 would mean QEMU's default cap; "uncapped" is the largest value it takes */
	uint64_t bw = ps->max_bandwidth ? ps->max_bandwidth : (uint64_t)INT64_MAX / 2;
	struct hv_mig_params p = {
		.set = HV_MIG_P_MAX_BANDWIDTH | HV_MIG_P_DOWNTIME_LIMIT,
		.max_bandwidth = (int64_t)bw,
		.downtime_limit_ms = (int64_t)ps->downtime_limit_ms,
	};
	/* the user's cap holds after the switch too (QEMU's own default there is none) */
	if (postcopy) {
		p.set |= HV_MIG_P_MAX_POSTCOPY_BANDWIDTH;
		p.max_postcopy_bandwidth = (int64_t)bw;
	}
	if (ps->cap_xbzrle && ps->xbzrle_cache_size) {
		p.set |= HV_MIG_P_XBZRLE_CACHE_SIZE;
		p.xbzrle_cache_size = (int64_t)ps->xbzrle_cache_size;
	}
	return hv_mig_set_params(ct->qmp, &p, 5000, err);
}

static void sample_from(const struct hv_mig_stats *q, int64_t elapsed, struct pol_sample *s)
{
	memset(s, 0, sizeof(*s));
	s->elapsed_ns = elapsed;
	s->remaining = q->remaining;
	s->transferred = q->transferred;
	s->total = q->total;
	s->rate = q->mbps * 1e6 / 8;
	s->dirty_rate = q->dirty_rate;
	s->dirty_sync_count = q->dirty_sync_count;
	s->xbzrle_encoding_rate = q->xbzrle_encoding_rate;
	s->xbzrle_miss_rate = q->xbzrle_cache_miss_rate;
}

static int apply_action(struct container *ct, const struct pol_action *a, struct gw_err *err)
{
	struct hv_mig_params p = { 0 };
	switch (a->kind) {
	case POL_SET_XBZRLE_CACHE:
		p.set = HV_MIG_P_XBZRLE_CACHE_SIZE;
		p.xbzrle_cache_size = (int64_t)a->value;
		break;
	case POL_THROTTLE:
		p.set = HV_MIG_P_THROTTLE_TRIGGER_THRESHOLD | HV_MIG_P_CPU_THROTTLE_INITIAL |
			HV_MIG_P_CPU_THROTTLE_INCREMENT;
		p.throttle_trigger_threshold = 1;
		p.cpu_throttle_initial = (int)a->value;
		p.cpu_throttle_increment = (int)a->value2;
		break;
	case POL_START_POSTCOPY:
		return hv_mig_start_postcopy(ct->qmp, 5000, err);
	case POL_SET_DOWNTIME:
		p.set = HV_MIG_P_DOWNTIME_LIMIT;
		p.downtime_limit_ms = (int64_t)a->value;
		break;
	default:
		return 0;
	}
	return hv_mig_set_params(ct->qmp, &p, 5000, err);
}

/* What `godwit migrate --status` reads: the latest figures of a migration, replaced
 * atomically (ROOT/containers/NAME/migration.json), since the shim is busy while it runs. */
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

/* Run QEMU's migration and the policy loop until QEMU says completed (0) or, in a post-copy
 * move, postcopy-active (1: the guest has stopped here and runs from the destination's side
 * from now on), or the policy or a failure ends it (<0, QEMU's migration cancelled). */
static int run_stream(struct container *ct, struct shim_client *cl, const struct src_opts *o,
		      const struct pol_setup *ps, struct pol_state *stp, int fd, int *mirroring,
		      json_object *actions, struct hv_mig_stats *last_q, struct gw_err *err)
{
	struct pol_state st = *stp;
	int r = set_cap_and_params(ct, ps, o->offline, o->postcopy != PC_NEVER, err);
	int switched = 0, continued = 0;
	if (r < 0)
		return r;
	/* the disk is already in sync on the destination (the mirror, source_run) */
	if ((r = mig_qemu_stream(ct, HV_MIG_OUT, fd, 0, err)) < 0)
		return r;
	int64_t t0 = gw_now_mono_ns();
	for (;;) {
		struct hv_mig_stats q;
		if ((r = hv_mig_query(ct->qmp, &q, 5000, err)) < 0)
			return r;
		if (q.status == HV_MIG_COMPLETED || q.status == HV_MIG_POSTCOPY_ACTIVE) {
			*last_q = q;
			return q.status != HV_MIG_COMPLETED ? 1 : 0;
		}
		if (q.status == HV_MIG_PRE_SWITCHOVER && continued) {
			/* QEMU has our migrate-continue but its migration thread has not moved on
			 * yet: a second one would fail ("not in expected state: device") */
			poll(NULL, 0, 1);
			continue;
		}
		if (q.status == HV_MIG_PRE_SWITCHOVER) {
			/* our guest has stopped for the switch (or the last copy) and QEMU waits:
			 * the disk mirror copies its last blocks and ends now, so that once the
			 * destination's guest runs (at once, on its own) nobody else writes its
			 * disk (docs/migration-protocol.md §2) */
			/* and, at a switch to post-copy, from here nothing of ours may reach the
			 * stopped guest (alink_set_mode): its last output is read, nothing is
			 * written, then the link freezes. A pre-copy completion needs none of it:
			 * QEMU holds its lock from the last RAM sync to the end of the device state,
			 * and what reaches our guest after that never crosses. */
			if (switched)
				alink_set_mode(ct, ALINK_NO_WRITES);
			if (*mirroring && (r = mig_mirror_cancel(ct, 0, err)) < 0)
				return r;
			*mirroring = 0;
			if (switched)
				alink_set_mode(ct, ALINK_FROZEN);
			mig_trace("source: pre-switchover, disk mirror ended");
			if ((r = hv_mig_continue(ct->qmp, HV_MIG_PRE_SWITCHOVER, 5000, err)) < 0)
				return r;
			continued = 1;
			continue;
		}
		if (q.status == HV_MIG_DEVICE) {
			/* QEMU sends the device state: the switch is a moment away */
			poll(NULL, 0, 1);
			continue;
		}
		if (q.status == HV_MIG_FAILED || q.status == HV_MIG_CANCELLED)
			return gw_err_set(err, EIO, "QEMU's migration %s%s%s", q.status_name,
					  q.error_desc[0] ? ": " : "", q.error_desc);
		struct pol_sample s;
		sample_from(&q, gw_now_mono_ns() - t0, &s);
		struct pol_action act;
		if (o->postcopy == PC_AFTER_FIRST_PASS && !switched && s.dirty_sync_count >= 2) {
			/* --postcopy: every page has been sent once; the rest goes on demand */
			json_object *rec = json_object_new_object();
			json_object_object_add(rec, "at_ms", json_object_new_int64(s.elapsed_ns / 1000000));
			json_object_object_add(rec, "action", json_object_new_string("postcopy"));
			json_object_object_add(rec, "reason", json_object_new_string("first pass done (--postcopy)"));
			json_object_array_add(actions, rec);
			if ((r = hv_mig_start_postcopy(ct->qmp, 5000, err)) < 0)
				return r;
			switched = 1;
		} else if (!o->offline && !switched && pol_decide(&st, &s, &o->targets, &act) > 0) {
			json_object *rec = json_object_new_object();
			json_object_object_add(rec, "at_ms", json_object_new_int64(s.elapsed_ns / 1000000));
			json_object_object_add(rec, "action", json_object_new_string(pol_action_name(act.kind)));
			json_object_object_add(rec, "reason", json_object_new_string(act.reason));
			json_object_array_add(actions, rec);
			if (act.kind == POL_CANCEL) {
				hv_mig_cancel(ct->qmp, 5000, NULL);
				enum hv_mig_status st2;
				mig_wait_qemu(ct, 10000, &st2, NULL);
				return gw_err_set(err, ETIMEDOUT, "%s", act.reason);
			}
			if ((r = apply_action(ct, &act, err)) < 0)
				return r;
			switched = act.kind == POL_START_POSTCOPY;
		}
		struct signalfd_siginfo si;
		int cancel = 0;
		while (ct->cancel_fd >= 0 && read(ct->cancel_fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR2)
				ct->postcopy_now = 1;
			else
				cancel = 1;
		}
		if (ct->postcopy_now && !switched) {
			/* `godwit migrate --postcopy-now`: only a move set up for post-copy
			 * (postcopy-ram on both ends, the control connection) can switch */
			ct->postcopy_now = 0;
			int can = o->postcopy != PC_NEVER;
			json_object *rec = json_object_new_object();
			json_object_object_add(rec, "at_ms", json_object_new_int64(s.elapsed_ns / 1000000));
			json_object_object_add(rec, "action", json_object_new_string(
				can ? "start-postcopy" : "postcopy-now-refused"));
			json_object_object_add(rec, "reason", json_object_new_string(
				can ? "the user asked (--postcopy-now)"
				    : "--postcopy-now, but this migration was started with "
				      "--no-postcopy"));
			json_object_array_add(actions, rec);
			if (can) {
				if ((r = hv_mig_start_postcopy(ct->qmp, 5000, err)) < 0)
					return r;
				switched = 1;
			}
		}
		/* once post-copy has started, a cancel would lose the guest: it is not offered */
		if (!switched && cancel) {
			/* `godwit migrate --cancel`: before the commit the source just goes on */
			hv_mig_cancel(ct->qmp, 5000, NULL);
			enum hv_mig_status st2;
			mig_wait_qemu(ct, 10000, &st2, NULL);
			return gw_err_set(err, ECANCELED, "cancelled by the user");
		}
		{
			json_object *d = json_object_new_object();
			json_object_object_add(d, "status", json_object_new_string(q.status_name));
			json_object_object_add(d, "round", json_object_new_int64((int64_t)s.dirty_sync_count));
			json_object_object_add(d, "transferred", json_object_new_int64((int64_t)s.transferred));
			json_object_object_add(d, "remaining", json_object_new_int64((int64_t)s.remaining));
			json_object_object_add(d, "total", json_object_new_int64((int64_t)s.total));
			json_object_object_add(d, "rate", json_object_new_double(s.rate));
			json_object_object_add(d, "dirty_rate", json_object_new_double(s.dirty_rate));
			json_object_object_add(d, "xbzrle", json_object_new_boolean(st.xbzrle_on));
			json_object_object_add(d, "postcopy_capable",
					       json_object_new_boolean(o->postcopy != PC_NEVER));
			json_object_object_add(d, "phase", json_object_new_string(
				switched ? "postcopy" : "precopy"));
			json_object_object_add(d, "elapsed_ms", json_object_new_int64(s.elapsed_ns / 1000000));
			json_object_object_add(d, "actions", json_object_get(actions));
			mig_publish_status(ct, d);
			json_object *ev = ctl_make_event("migration-progress", d);
			if (cl && cl->fd >= 0)
				ctl_send(cl->fd, ev, NULL);
			json_object_put(ev);
		}
		/* keep taking the container's output while QEMU copies: the log stays live and
		 * the guest's link queue never fills up behind a busy migration. QEMU's
		 * events wake us at once: a new status (pre-switchover, the switch, the end:
		 * the hand-over waits on us there) or a new round (--postcopy switches on it) */
		mig_await_qemu(ct, switched ? 1 : 20);
	}
}

static json_object *make_config_msg(struct container *ct, const struct src_opts *o,
				    const struct pol_setup *ps)
{
	struct mig_config mc = { 0 };
	snprintf(mc.name, sizeof(mc.name), "%s", ct->cfg.name);
	snprintf(mc.image, sizeof(mc.image), "%s", ct->cfg.image_id);
	mc.memory = ct->cfg.mem_bytes;
	mc.cpus = ct->cfg.cpus;
	mc.n_disks = 1;
	snprintf(mc.disks[0].id, sizeof(mc.disks[0].id), "disk0");
	mc.kind = o->offline ? MIG_KIND_OFFLINE : o->postcopy ? MIG_KIND_POSTCOPY : MIG_KIND_LIVE;
	json_object *j = mig_config_to_json(&mc);
	json_object *c;
	ct_config_to_json(&ct->cfg, &c);
	json_object_object_add(j, "container", c);
	struct hv_mig_cap_state caps[MIG_SRC_CAPS];
	caps_list(ps, o->offline, o->postcopy != PC_NEVER, caps);
	json_object_object_add(j, "caps", mig_caps_to_json(caps, MIG_SRC_CAPS));
	return j;
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
	char *b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64) {
		free(link);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	EVP_EncodeBlock((unsigned char *)b64, link, (int)len);
	free(link);
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

static int source_run(struct container *ct, struct shim_client *cl, json_object *args,
		      json_object **result, struct gw_err *err)
{
	struct src_opts o;
	int r = parse_opts(ct, args, &o, err);
	if (r < 0)
		return r;
	if (ct->st.state != CT_RUNNING)
		return gw_err_set(err, EINVAL, "container is %s, not running",
				  ct_state_name(ct->st.state));
	int major = 0, minor = 0;
	if (!o.offline && ct->accel == HV_ACCEL_TCG &&
	    qmp_qemu_version(ct->qmp, &major, &minor) == 0 && major < HV_TCG_MIGRATE_MIN_MAJOR)
		return gw_err_set(err, ENOTSUP, "live migration under TCG needs QEMU %d.0 or newer: "
				  "this container runs on QEMU %d.%d, which loses guest writes while "
				  "it migrates a TCG guest (fixed upstream in 9.0); install a newer "
				  "QEMU (scripts/deps.sh) or move it stopped with --offline",
				  HV_TCG_MIGRATE_MIN_MAJOR, major, minor);
	int64_t t0 = gw_now_mono_ns(), held_first_ns = 0, released_ns = 0, held_reads = 0;
	mig_trace("source: connecting");
	int fd = net_connect_tcp(o.uri, 10000, err);
	if (fd < 0)
		return gw_err_prefix(err, "migrate %s to %s", ct->cfg.name, o.uri);
	mig_sock_tune(fd);
	struct pol_setup ps;
	struct pol_state pst;
	pol_initial(&o.targets, &ps, &pst);
	shim_set_state(ct, CT_MIGRATING, o.uri);
	struct signalfd_siginfo si;
	while (ct->cancel_fd >= 0 && read(ct->cancel_fd, &si, sizeof(si)) == sizeof(si))
		; /* a stale cancel or switch request is not for this migration */
	ct->postcopy_now = 0;
	publish_end(ct, "setup", o.uri, NULL, NULL);
	struct mig_conn mc, cc = { .fd = -1 };
	mig_conn_init(&mc, fd, 30000);
	/* the control messages after RAM_BEGIN: on the migration connection, or in a post-copy
	 * move on the control connection */
	struct mig_conn *ctl = &mc;
	uint64_t common;
	char peer[64], token[33] = "";
	uint16_t nbd_port = 0;
	json_object *actions = json_object_new_array();
	struct hv_mig_stats q;
	hv_mig_stats_parse(NULL, &q, NULL); /* none yet */
	int committed = 0, paused = 0, mirroring = 0, ram_sent = 0, went_postcopy = 0;
	r = mig_hello(&mc, MIG_FEAT_OFFLINE | MIG_FEAT_LIVE | MIG_FEAT_XBZRLE |
			   (o.postcopy ? MIG_FEAT_POSTCOPY : 0), &common, peer, err);
	if (r == 0 && o.postcopy && !(common & MIG_FEAT_POSTCOPY))
		r = gw_err_set(err, ENOTSUP, "the destination does not offer post-copy");
	if (r == 0) {
		json_object *cfg = make_config_msg(ct, &o, &ps);
		r = mig_send_json(&mc, MIG_CONFIG, cfg, err);
		json_object_put(cfg);
	}
	/* the destination starts its QEMU now: meanwhile the guest's output keeps flowing */
	if (r == 0)
		mig_await(ct, fd, mc.timeout_ms);
	if (r == 0)
		r = recv_prepare_nbd(&mc, &nbd_port, token, err);
	if (r == 0) {
		/* the disk first: mirror the overlay into the destination's NBD export until the
		 * two are in sync; the mirror then keeps them in sync while RAM moves, and ends in
		 * pre-switchover (run_stream) */
		char host[256], port[16];
		mig_trace("source: PREPARE received");
		if (o.postcopy) {
			r = mig_open_control(o.uri, token, &cc, err);
			mig_trace("source: control connection open");
		}
		if (r == 0)
			r = net_parse_tcp(o.uri, host, port, err);
		if (r == 0 && (r = mig_mirror_start(ct, host, nbd_port, err)) == 0) {
			mirroring = 1;
			mig_trace("source: disk mirror started");
			r = mig_mirror_wait_ready(ct, (int)(o.targets.max_total_ns / 1000000),
						  ct->cancel_fd, err);
			mig_trace("source: disk mirror ready");
		}
	}
	if (r == 0 && o.offline) {
		r = hv_vm_stop(ct->qmp, 5000, err);
		paused = r == 0;
	}
	off_t log_sent = 0;
	if (r == 0)
		r = send_log(ct, &mc, 0, &log_sent, err);
	if (r == 0) {
		json_object *b = json_object_new_object();
		r = mig_send_json(&mc, MIG_RAM_BEGIN, b, err);
		json_object_put(b);
		ram_sent = r == 0;
		if (ram_sent && o.postcopy)
			ctl = &cc;
	}
	if (r == 0 && (r = run_stream(ct, cl, &o, &ps, &pst, fd, &mirroring, actions, &q,
				      err)) > 0) {
		r = 0; /* postcopy-active */
		went_postcopy = 1;
	}
	if (r == 0 && mirroring)
		r = gw_err_set(err, EIO, "QEMU switched over without waiting for the disk mirror");
	if (r == 0) {
		/* QEMU stopped the guest for the last copy (or the switch to post-copy); wait
		 * until the destination has the device state */
		json_object *done;
		ctl->timeout_ms = 60000;
		mig_trace("source: QEMU completed, waiting for DONE");
		/* meanwhile take in the guest's last output, so alink_save finds little to wait for */
		mig_await(ct, ctl->fd, ctl->timeout_ms);
		r = mig_recv_json(ctl, MIG_DONE, &done, err);
		mig_trace("source: DONE received");
		if (r == 0)
			json_object_put(done);
	}
	if (r == 0) {
		r = send_commit(ct, ctl, log_sent, err);
		mig_trace("source: log tail and COMMIT sent");
		committed = r == 0;
	}
	if (r == 0) {
		json_object *running;
		r = mig_recv_json(ctl, MIG_RUNNING, &running, err);
		mig_trace("source: RUNNING received");
		if (r == 0) {
			/* when the destination released the guest's held output (its clock;
			 * optional: a peer that does not say is no error) */
			uint64_t a = 0, b = 0, n = 0;
			if (mig_json_u64(running, "released_ns", &b, NULL) == 0 && b &&
			    mig_json_u64(running, "held_reads", &n, NULL) == 0 &&
			    (!n || (mig_json_u64(running, "held_first_rx_ns", &a, NULL) == 0 &&
				    a && a <= b))) {
				held_reads = (int64_t)n;
				held_first_ns = (int64_t)a;
				released_ns = (int64_t)b;
			}
			json_object_put(running);
		}
		else if (r == -ECONNABORTED)
			/* the destination says it could not resume and has killed its copy, so
			 * the one copy left is ours: take the container back */
			committed = 0;
		else
			gw_err_prefix(err, "committed, but the destination did not confirm that it "
				      "runs; the source stays paused");
	}
	if (r == 0 && went_postcopy) {
		/* the destination runs and pulls the pages it lacks from our QEMU: we may go only
		 * once QEMU has sent them all; a broken link waits for `migrate --recover` */
		r = mig_src_postcopy_finish(ct, ctl, token, err);
		mig_trace("source: post-copy finished");
		if (r < 0)
			gw_err_prefix(err, "post-copy failed after the destination resumed: its "
				      "guest is lost");
	}
	if (r == 0) {
		/* the final figures: QEMU says "completed" a moment before it has filled in its
		 * total time and downtime, and a post-copy move ends long after the last sample */
		struct hv_mig_stats fin;
		if (hv_mig_query(ct->qmp, &fin, 5000, NULL) == 0)
			q = fin;
	}
	if (r < 0) {
		if (mirroring)
			mig_mirror_cancel(ct, 1, NULL);
		if (!committed) {
			mig_send_abort(ram_sent ? ctl : &mc, "source-failed", err->msg, NULL);
			enum hv_mig_status s;
			hv_mig_cancel(ct->qmp, 5000, NULL);
			mig_wait_qemu(ct, 10000, &s, NULL);
			/* before the commit the source owns the container: it runs on */
			alink_set_mode(ct, ALINK_LIVE);
			hv_vm_cont(ct->qmp, 5000, NULL);
			shim_set_state(ct, CT_RUNNING, "");
			(void)paused;
		} else {
			shim_set_state(ct, CT_PAUSED, went_postcopy
				       ? "post-copy failed, the guest is lost (godwit rm -f removes it)"
				       : "migration outcome unknown");
		}
		close(fd);
		if (cc.fd >= 0)
			close(cc.fd);
		json_object_put(actions);
		gw_err_prefix(err, "migrate %s to %s", ct->cfg.name, o.uri);
		publish_end(ct, committed ? "unknown" : "failed", o.uri, NULL, err->msg);
		return -err->code;
	}
	json_object *empty = json_object_new_object();
	mig_send_json(ctl, MIG_COMMIT_ACK, empty, NULL);
	json_object_put(empty);
	close(fd);
	if (cc.fd >= 0)
		close(cc.fd);

	json_object *res = json_object_new_object();
	json_object_object_add(res, "total_ms", json_object_new_int64((gw_now_mono_ns() - t0) / 1000000));
	json_object_object_add(res, "qemu_total_ms", json_object_new_int64((int64_t)q.total_time_ms));
	json_object_object_add(res, "downtime_ms", json_object_new_int64((int64_t)q.downtime_ms));
	json_object_object_add(res, "bytes", json_object_new_int64((int64_t)q.transferred));
	json_object_object_add(res, "rounds", json_object_new_int64((int64_t)q.dirty_sync_count));
	/* what happened: a move allowed to switch that finished in pre-copy is "live" */
	json_object_object_add(res, "kind", json_object_new_string(o.offline	      ? "offline"
								   : went_postcopy ? "postcopy"
										   : "live"));
	json_object_object_add(res, "actions", actions);
	if (released_ns) {
		/* the guest ran again (its first held output arrived) and the world saw it
		 * (the held output logged and sent on), on the destination's clock */
		char ts[36];
		json_object_object_add(res, "held_reads", json_object_new_int64(held_reads));
		if (held_first_ns) {
			gw_fmt_rfc3339(held_first_ns, ts);
			json_object_object_add(res, "held_output_first_rx", json_object_new_string(ts));
		}
		gw_fmt_rfc3339(released_ns, ts);
		json_object_object_add(res, "held_output_released", json_object_new_string(ts));
	}
	*result = res;
	publish_end(ct, "completed", o.uri, res, NULL);
	/* committed and confirmed: the destination runs the container; ours goes */
	shim_set_state(ct, CT_MIGRATED, o.uri);
	hv_vm_quit(ct->qmp, 5000, NULL);
	return 0;
}

int mig_source_run(struct container *ct, struct shim_client *cl, json_object *args,
		   json_object **result, struct gw_err *err)
{
	mig_qmp_serve_agent(ct, 1);
	int r = source_run(ct, cl, args, result, err);
	mig_qmp_serve_agent(ct, 0);
	return r;
}
