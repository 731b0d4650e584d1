/* The source's stream phase (docs/migration-policy.md): QEMU copies RAM over the migration
 * connection while we sample its figures, apply the policy's steps, honour the user's cancel
 * and post-copy requests, publish progress, and at pre-switchover end the disk mirror before
 * QEMU may hand the guest over. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "godwit/ctl.h"
#include "godwit/util.h"
#include "mig_source.h"

/* One stream phase: what run across its samples. */
struct stream {
	struct container *ct;
	struct shim_client *cl;
	const struct src_opts *o;
	struct pol_state st;
	int *mirroring;
	json_object *actions;
	int switched;	/* QEMU was told to start post-copy */
	int continued;	/* migrate-continue sent at pre-switchover */
};

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
	case POL_SET_SWITCHOVER_BW:
		/* advice only: a QEMU without the parameter (before 8.2) judges by its own */
		p.set = HV_MIG_P_AVAIL_SWITCHOVER_BANDWIDTH;
		p.avail_switchover_bandwidth = (int64_t)a->value;
		if (hv_mig_set_params(ct->qmp, &p, 5000, err) < 0)
			fprintf(stderr, "shim %s: %s\n", ct->cfg.name, err->msg);
		*err = (struct gw_err){ 0 };
		return 0;
	default:
		return 0;
	}
	return hv_mig_set_params(ct->qmp, &p, 5000, err);
}

void src_action(json_object *actions, int64_t at_ns, const char *action, const char *reason)
{
	json_object *rec = json_object_new_object();
	json_object_object_add(rec, "at_ms", json_object_new_int64(at_ns / 1000000));
	json_object_object_add(rec, "action", json_object_new_string(action));
	json_object_object_add(rec, "reason", json_object_new_string(reason));
	json_object_array_add(actions, rec);
}

void src_cancel_qemu(struct container *ct)
{
	enum hv_mig_status st;
	hv_mig_cancel(ct->qmp, 5000, NULL);
	mig_wait_qemu(ct, 10000, &st, NULL);
}

/* Pre-switchover: our guest has stopped for the switch (or the last copy) and QEMU waits. The
 * disk mirror copies its last blocks and ends now, so that once the destination's guest runs
 * (at once, on its own) nobody else writes its disk (docs/migration-protocol.md §2). At a
 * switch to post-copy nothing of ours may reach the stopped guest from here (alink_set_mode):
 * its last output is read, nothing is written, then the link freezes. A pre-copy completion
 * needs none of it: QEMU holds its lock from the last RAM sync to the end of the device state,
 * and what reaches our guest after that never crosses. */
static int at_switchover(struct stream *s, struct gw_err *err)
{
	int r;
	if (s->switched)
		alink_set_mode(s->ct, ALINK_NO_WRITES);
	if (*s->mirroring && (r = mig_mirror_cancel(s->ct, 0, err)) < 0)
		return r;
	*s->mirroring = 0;
	if (s->switched)
		alink_set_mode(s->ct, ALINK_FROZEN);
	mig_trace("source: pre-switchover, disk mirror ended");
	if ((r = hv_mig_continue(s->ct->qmp, HV_MIG_PRE_SWITCHOVER, 5000, err)) < 0)
		return r;
	s->continued = 1;
	return 0;
}

/* The step of this sample: --postcopy switches once every page has been sent; otherwise the
 * policy decides (its cancel ends the move). */
static int decide(struct stream *s, const struct pol_sample *smp, struct gw_err *err)
{
	const struct src_opts *o = s->o;
	struct pol_action act;
	int r;
	if (o->postcopy == PC_AFTER_FIRST_PASS && !s->switched && smp->dirty_sync_count >= 2) {
		/* --postcopy: every page has been sent once; the rest goes on demand */
		src_action(s->actions, smp->elapsed_ns, "postcopy", "first pass done (--postcopy)");
		if ((r = hv_mig_start_postcopy(s->ct->qmp, 5000, err)) < 0)
			return r;
		s->switched = 1;
	} else if (!o->offline && !s->switched && pol_decide(&s->st, smp, &o->targets, &act) > 0) {
		src_action(s->actions, smp->elapsed_ns, pol_action_name(act.kind), act.reason);
		if (act.kind == POL_CANCEL) {
			src_cancel_qemu(s->ct);
			return gw_err_set(err, ETIMEDOUT, "%s", act.reason);
		}
		if ((r = apply_action(s->ct, &act, err)) < 0)
			return r;
		s->switched = act.kind == POL_START_POSTCOPY;
	}
	return 0;
}

/* The user's requests through the control API (control_migrate.c: migrate-cancel,
 * migrate-postcopy-now). Only a move set up for post-copy (postcopy-ram on both ends, the
 * control connection) can switch; once it has, a cancel would lose the guest and is refused
 * there. */
static int user_requests(struct stream *s, const struct pol_sample *smp, struct gw_err *err)
{
	struct container *ct = s->ct;
	int r;
	if (ct->asks.postcopy_now && !s->switched) {
		ct->asks.postcopy_now = 0;
		int can = s->o->postcopy != PC_NEVER;
		src_action(s->actions, smp->elapsed_ns, can ? "start-postcopy" : "postcopy-now-refused",
		       can ? "the user asked (--postcopy-now)"
			   : "--postcopy-now, but this migration was started with --no-postcopy");
		if (can) {
			if ((r = hv_mig_start_postcopy(ct->qmp, 5000, err)) < 0)
				return r;
			s->switched = 1;
		}
	}
	ct->asks.switched = s->switched;
	if (!s->switched && ct->asks.cancel) {
		/* before the commit the source just goes on */
		src_cancel_qemu(ct);
		return gw_err_set(err, ECANCELED, "cancelled by the user");
	}
	return 0;
}

/* migration.json (`migrate --status`) and a progress event to the client that asked. */
static void publish_progress(struct stream *s, const struct hv_mig_stats *q,
			     const struct pol_sample *smp)
{
	json_object *d = json_object_new_object();
	json_object_object_add(d, "status", json_object_new_string(q->status_name));
	json_object_object_add(d, "round", json_object_new_int64((int64_t)smp->dirty_sync_count));
	json_object_object_add(d, "transferred", json_object_new_int64((int64_t)smp->transferred));
	json_object_object_add(d, "remaining", json_object_new_int64((int64_t)smp->remaining));
	json_object_object_add(d, "total", json_object_new_int64((int64_t)smp->total));
	json_object_object_add(d, "rate", json_object_new_double(smp->rate));
	json_object_object_add(d, "dirty_rate", json_object_new_double(smp->dirty_rate));
	json_object_object_add(d, "xbzrle", json_object_new_boolean(s->st.xbzrle_on));
	json_object_object_add(d, "postcopy_capable",
			       json_object_new_boolean(s->o->postcopy != PC_NEVER));
	json_object_object_add(d, "phase",
			       json_object_new_string(s->switched ? "postcopy" : "precopy"));
	json_object_object_add(d, "elapsed_ms", json_object_new_int64(smp->elapsed_ns / 1000000));
	json_object_object_add(d, "actions", json_object_get(s->actions));
	mig_publish_status(s->ct, d);
	json_object *ev = ctl_make_event("migration-progress", d);
	if (s->cl)
		shim_send(s->cl, ev);
	json_object_put(ev);
}

int src_stream(struct container *ct, struct shim_client *cl, const struct src_opts *o,
	       const struct pol_setup *ps, struct pol_state *stp, const struct src_sink *sink,
	       int *mirroring,
	       json_object *actions, struct hv_mig_stats *last_q, struct gw_err *err)
{
	struct stream s = { .ct = ct, .cl = cl, .o = o, .st = *stp, .mirroring = mirroring,
			    .actions = actions };
	int r = src_set_caps_and_params(ct, ps, o, err);
	if (r < 0)
		return r;
	/* the disk is already in sync on the destination (the mirror, mig_source.c) */
	r = o->channels ? mig_src_channels(ct, o->uri, sink->token, o->channels, sink->ch, err)
			: mig_qemu_stream(ct, HV_MIG_OUT, sink->fd, 0, err);
	if (r < 0)
		return r;
	int64_t t0 = gw_now_mono_ns();
	for (;;) {
		struct hv_mig_stats q;
		if ((r = hv_mig_query(ct->qmp, &q, 5000, err)) < 0)
			return r;
		switch (q.status) {
		case HV_MIG_COMPLETED:
		case HV_MIG_POSTCOPY_ACTIVE:
			*last_q = q;
			return q.status != HV_MIG_COMPLETED ? 1 : 0;
		case HV_MIG_PRE_SWITCHOVER:
			/* once continued, QEMU's migration thread may not have moved on yet: a
			 * second migrate-continue would fail ("not in expected state: device") */
			if (s.continued)
				mig_await(ct, -1, 1);
			else if ((r = at_switchover(&s, err)) < 0)
				return r;
			continue;
		case HV_MIG_DEVICE:
			/* QEMU sends the device state: the switch is a moment away */
			mig_await(ct, -1, 1);
			continue;
		case HV_MIG_FAILED:
		case HV_MIG_CANCELLED:
			return gw_err_set(err, EIO, "QEMU's migration %s%s%s", q.status_name,
					  q.error_desc[0] ? ": " : "", q.error_desc);
		default:
			break;
		}
		struct pol_sample smp;
		sample_from(&q, gw_now_mono_ns() - t0, &smp);
		if ((r = decide(&s, &smp, err)) < 0 || (r = user_requests(&s, &smp, err)) < 0)
			return r;
		publish_progress(&s, &q, &smp);
		/* keep taking the container's output while QEMU copies: the log stays live and
		 * the guest's link queue never fills up behind a busy migration. QEMU's
		 * events wake us at once: a new status (pre-switchover, the switch, the end:
		 * the hand-over waits on us there) or a new round (--postcopy switches on it) */
		mig_await_qemu(ct, s.switched ? 1 : 20);
	}
}
