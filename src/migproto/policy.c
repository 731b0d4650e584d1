/* The live-migration policy (docs/migration-policy.md): capabilities chosen up front, then one
 * escalation step at a time — size the xbzrle cache to the working set, switch to post-copy or
 * throttle the guest — and a clear cancel when nothing allowed can finish in time. Pure. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "godwit/policy.h"

#define MIB (1024.0 * 1024.0)
#define POL_UNCAPPED (64ull << 30)		/* bytes/s: QEMU's limit effectively off */
#define POL_XBZRLE_START (32ull << 20)		/* cache while the working set is unknown */
#define POL_XBZRLE_MIN (64ull << 20)
#define POL_XBZRLE_MAX (1ull << 30)
#define POL_MIN_ROUNDS 2			/* judge convergence from round 2 on */
#define POL_ROUNDS_PER_STEP 2			/* give each step two rounds to work */
#define POL_NOT_CONVERGING 0.8			/* dirty rate >= 80% of the effective rate */
#define POL_THROTTLE_INITIAL 30
#define POL_THROTTLE_INCREMENT 20
#define POL_STALL_ROUNDS 4			/* rounds without 10% less left: stalled */
#define POL_DOWNTIME_START_MS 5			/* QEMU's limit for the first rounds */
#define POL_DOWNTIME_RAISE_ROUND 8		/* from this round on: the user's target */
#define POL_SWITCHOVER_MIN (1024.0 * 1024.0)	/* bytes/s: below this, no link worth telling */
#define POL_SWITCHOVER_GROWTH 1.25		/* tell QEMU again when the link is this much faster */

void pol_targets_default(struct pol_targets *t, uint64_t mem_bytes)
{
	memset(t, 0, sizeof(*t));
	t->max_downtime_ns = 50 * 1000000LL;
	t->max_total_ns = 60 * 1000000000LL;
	t->mem_bytes = mem_bytes;
	t->allow_xbzrle = 1;
	t->allow_throttle = 1;
	t->allow_postcopy = 1;
}

int pol_hints_first(const struct pol_targets *t, double vcpu_load)
{
	return t->allow_postcopy && vcpu_load >= 0 && vcpu_load < POL_HINTS_MAX_LOAD;
}

void pol_initial(const struct pol_targets *t, struct pol_setup *out, struct pol_state *st)
{
	memset(out, 0, sizeof(*out));
	memset(st, 0, sizeof(*st));
	out->cap_xbzrle = !!t->allow_xbzrle;
	out->cap_postcopy = !!t->allow_postcopy;
	/* Post-copy, when allowed, is the last step; QEMU's own auto-converge would throttle
	 * the guest before it for nothing. */
	out->cap_auto_converge = t->allow_throttle && !t->allow_postcopy;
	out->max_bandwidth = t->bandwidth_cap ? t->bandwidth_cap : POL_UNCAPPED;
	/* Start below the target: QEMU stops the guest as soon as what is left fits its limit,
	 * so a guest that converges anyway stops with less left and pauses for less. */
	int64_t ms = t->max_downtime_ns / 1000000;
	if (ms > POL_DOWNTIME_START_MS)
		ms = POL_DOWNTIME_START_MS;
	out->downtime_limit_ms = ms < 1 ? 1 : (uint64_t)ms;
	st->downtime_ms = out->downtime_limit_ms;
	if (out->cap_xbzrle) {
		out->xbzrle_cache_size = POL_XBZRLE_START;
		if (t->mem_bytes && out->xbzrle_cache_size > t->mem_bytes / 4)
			out->xbzrle_cache_size = t->mem_bytes / 4;
	}
	out->throttle_trigger_threshold = 100;
	st->xbzrle_on = out->cap_xbzrle;
}

static const char *const action_names[] = {
	[POL_CONTINUE] = "continue", [POL_SET_XBZRLE_CACHE] = "xbzrle-cache",
	[POL_THROTTLE] = "throttle", [POL_START_POSTCOPY] = "start-postcopy",
	[POL_CANCEL] = "cancel", [POL_SET_DOWNTIME] = "downtime-limit",
	[POL_SET_SWITCHOVER_BW] = "switchover-bandwidth",
};

const char *pol_action_name(enum pol_action_kind k)
{
	return (unsigned)k <= POL_SET_SWITCHOVER_BW ? action_names[k] : "unknown";
}

static uint64_t next_pow2(uint64_t v)
{
	uint64_t p = 1;
	while (p < v && p < (1ull << 62))
		p <<= 1;
	return p;
}

static int act(struct pol_action *out, enum pol_action_kind kind, uint64_t value,
	       uint64_t value2)
{
	out->kind = kind;
	out->value = value;
	out->value2 = value2;
	return kind != POL_CONTINUE;
}

/* Bytes/s actually drained from `remaining`: xbzrle sends cache hits encoded. */
static double effective_rate(const struct pol_state *st, const struct pol_sample *s)
{
	double r = s->rate;
	if (st->xbzrle_cache && s->xbzrle_encoding_rate > 1.0) {
		double miss = s->xbzrle_miss_rate < 0 ? 0 : s->xbzrle_miss_rate > 1 ? 1
											: s->xbzrle_miss_rate;
		r *= 1.0 + (s->xbzrle_encoding_rate - 1.0) * (1.0 - miss);
	}
	return r;
}

static int cancel(struct pol_state *st, const struct pol_sample *s, const struct pol_targets *t,
		  double eff, struct pol_action *out)
{
	char hint[80] = "";
	if (!t->allow_postcopy)
		snprintf(hint, sizeof(hint), "; post-copy not allowed (--no-postcopy)");
	else if (t->bandwidth_cap)
		snprintf(hint, sizeof(hint), "; link capped at %.0f MiB/s", t->bandwidth_cap / MIB);
	snprintf(out->reason, sizeof(out->reason),
		 "did not converge in %.0f s: dirty %.0f MiB/s vs link %.0f MiB/s, %.0f MiB left%s",
		 s->elapsed_ns / 1e9, s->dirty_rate / MIB, eff / MIB, s->remaining / MIB, hint);
	st->cancelled = 1;
	return act(out, POL_CANCEL, 0, 0);
}

/* From the low starting limit to the user's target: QEMU may now stop the guest with more
 * left, for a longer pause. */
static int raise_downtime(struct pol_state *st, const struct pol_sample *s, double eff,
			  uint64_t target_ms, struct pol_action *out)
{
	snprintf(out->reason, sizeof(out->reason),
		 "round %llu, %.0f MiB left (%.1f ms at %.0f MiB/s): downtime limit %llu -> %llu ms",
		 (unsigned long long)s->dirty_sync_count, s->remaining / MIB,
		 eff > 0 ? s->remaining / eff * 1e3 : INFINITY, eff / MIB,
		 (unsigned long long)st->downtime_ms, (unsigned long long)target_ms);
	st->downtime_ms = target_ms;
	return act(out, POL_SET_DOWNTIME, target_ms, 0);
}

int pol_decide(struct pol_state *st, const struct pol_sample *s, const struct pol_targets *t,
	       struct pol_action *out)
{
	memset(out, 0, sizeof(*out));
	if (!isfinite(s->rate) || !isfinite(s->dirty_rate) || s->rate < 0 || s->dirty_rate < 0 ||
	    !isfinite(s->xbzrle_encoding_rate) || !isfinite(s->xbzrle_miss_rate) ||
	    s->elapsed_ns < 0 || t->max_downtime_ns <= 0 || t->max_total_ns <= 0)
		return -EINVAL;
	if (st->cancelled)
		return act(out, POL_CONTINUE, 0, 0);
	if (s->postcopy_active || st->postcopy) {
		/* The destination runs the guest: cancelling now would lose it. */
		st->postcopy = 1;
		snprintf(out->reason, sizeof(out->reason), "post-copy running");
		return act(out, POL_CONTINUE, 0, 0);
	}
	if (s->dirty_sync_count > st->last_round) {
		/* a new round: is what is left still shrinking? */
		st->last_round = s->dirty_sync_count;
		if (s->dirty_sync_count >= POL_MIN_ROUNDS &&
		    (!st->best_round || s->remaining < st->best_remaining * 0.9)) {
			st->best_remaining = s->remaining;
			st->best_round = s->dirty_sync_count;
		}
	}
	/* Stalled: whatever the rates predict, the rounds have stopped making progress (seen on
	 * a flat-out writer with xbzrle on: encoding rates promised ~20 GiB/s and QEMU iterated
	 * ~100 rounds over 16 s) */
	int stalled = st->best_round && s->dirty_sync_count >= st->best_round + POL_STALL_ROUNDS;
	if (s->dirty_sync_count >= POL_MIN_ROUNDS && s->remaining > st->working_set)
		st->working_set = s->remaining;

	/* QEMU measures the rate as what it sent in the last 100 ms: once little is left, that
	 * is the trickle the guest dirties, not the link; it then judges the switch-over (left
	 * <= rate x downtime-limit) by the trickle and an idle guest never fits. The first pass
	 * measured the link: judge by the fastest rate seen, and tell QEMU so. */
	if (s->rate > st->link_rate)
		st->link_rate = s->rate;
	double eff = effective_rate(st, s);
	if (eff < st->link_rate)
		eff = st->link_rate;
	/* ... nor is a guest stalled whose little left the link moves within the target by
	 * itself, without xbzrle's promises: QEMU switches over as soon as it sees that */
	if (stalled && s->remaining <= st->link_rate * (double)t->max_downtime_ns / 1e9)
		stalled = 0;
	if (s->elapsed_ns >= t->max_total_ns) {
		if (t->allow_postcopy) {
			st->postcopy = 1;
			snprintf(out->reason, sizeof(out->reason),
				 "%.0f s limit reached with %.0f MiB left: switching to post-copy",
				 s->elapsed_ns / 1e9, s->remaining / MIB);
			return act(out, POL_START_POSTCOPY, 0, 0);
		}
		return cancel(st, s, t, eff, out);
	}
	if (s->dirty_sync_count >= POL_MIN_ROUNDS && st->link_rate >= POL_SWITCHOVER_MIN &&
	    (!st->switchover_bw || st->link_rate > POL_SWITCHOVER_GROWTH * st->switchover_bw)) {
		st->switchover_bw = (uint64_t)st->link_rate;
		snprintf(out->reason, sizeof(out->reason),
			 "round %llu: the link moved %.0f MiB/s; QEMU judges the switch-over by that, "
			 "not by what little is left to send", (unsigned long long)s->dirty_sync_count,
			 st->link_rate / MIB);
		return act(out, POL_SET_SWITCHOVER_BW, st->switchover_bw, 0);
	}
	double predicted_ns = eff > 0 ? s->remaining / eff * 1e9 : INFINITY;
	/* Safety net: however the guest looks, after POL_DOWNTIME_RAISE_ROUND rounds QEMU may
	 * stop it whenever what is left fits the user's target. */
	uint64_t target_ms = (uint64_t)(t->max_downtime_ns / 1000000);
	if (target_ms < 1)
		target_ms = 1;
	if (st->downtime_ms && st->downtime_ms < target_ms &&
	    s->dirty_sync_count >= POL_DOWNTIME_RAISE_ROUND) {
		st->step_round = s->dirty_sync_count; /* give QEMU its rounds with the new limit */
		return raise_downtime(st, s, eff, target_ms, out);
	}
	if (predicted_ns <= (double)t->max_downtime_ns && !stalled) {
		snprintf(out->reason, sizeof(out->reason), "predicted downtime %.1f ms fits",
			 predicted_ns / 1e6);
		return act(out, POL_CONTINUE, 0, 0);
	}
	if (!stalled &&
	    (s->dirty_sync_count < POL_MIN_ROUNDS || s->dirty_rate < POL_NOT_CONVERGING * eff)) {
		snprintf(out->reason, sizeof(out->reason), "converging");
		return act(out, POL_CONTINUE, 0, 0);
	}
	if (st->step_round && s->dirty_sync_count < st->step_round + POL_ROUNDS_PER_STEP) {
		snprintf(out->reason, sizeof(out->reason), "waiting for the last step to act");
		return act(out, POL_CONTINUE, 0, 0);
	}

	/* Not converging: take the next allowed step. */
	st->step_round = s->dirty_sync_count;
	if (st->xbzrle_on && !st->xbzrle_cache) {
		uint64_t ws = st->working_set ? st->working_set : s->remaining;
		uint64_t cache = next_pow2(2 * ws), max = POL_XBZRLE_MAX;
		if (t->mem_bytes && t->mem_bytes < max)
			max = t->mem_bytes;
		if (cache > max)
			cache = max;
		if (cache < POL_XBZRLE_MIN)
			cache = POL_XBZRLE_MIN;
		st->xbzrle_cache = cache;
		snprintf(out->reason, sizeof(out->reason),
			 "not converging (dirty %.0f MiB/s vs link %.0f MiB/s): xbzrle cache %.0f "
			 "MiB for a %.0f MiB working set", s->dirty_rate / MIB, eff / MIB,
			 cache / MIB, ws / MIB);
		return act(out, POL_SET_XBZRLE_CACHE, cache, 0);
	}
	if (t->allow_postcopy) {
		st->postcopy = 1;
		snprintf(out->reason, sizeof(out->reason),
			 "not converging (dirty %.0f MiB/s vs link %.0f MiB/s): switching to post-copy",
			 s->dirty_rate / MIB, eff / MIB);
		return act(out, POL_START_POSTCOPY, 0, 0);
	}
	/* without post-copy: let QEMU stop the guest with up to the user's target left */
	if (st->downtime_ms && st->downtime_ms < target_ms)
		return raise_downtime(st, s, eff, target_ms, out);
	if (t->allow_throttle && !st->throttling) {
		st->throttling = 1;
		snprintf(out->reason, sizeof(out->reason),
			 "not converging (dirty %.0f MiB/s vs link %.0f MiB/s): throttling the guest "
			 "from %d%%", s->dirty_rate / MIB, eff / MIB, POL_THROTTLE_INITIAL);
		return act(out, POL_THROTTLE, POL_THROTTLE_INITIAL, POL_THROTTLE_INCREMENT);
	}
	snprintf(out->reason, sizeof(out->reason), "not converging, nothing left to try");
	return act(out, POL_CONTINUE, 0, 0);
}
