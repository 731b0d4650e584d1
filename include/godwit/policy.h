/* The live-migration policy (docs/migration-policy.md): a pure function of samples taken from
 * QEMU's query-migrate and the user's targets. No I/O, no clock: the caller (src/shim/
 * mig_source.c) feeds it samples and applies the actions it returns through hv_vm.h.
 *
 * Use: pol_targets_default(); pol_initial() before `migrate` gives the capabilities (which QEMU
 * only accepts while no migration is active: xbzrle, auto-converge, postcopy-ram — the last
 * also on the destination) and the starting parameters. Then, for every sample (taken when
 * QEMU reports a new status or round, and at least every 20 ms):
 *     while (pol_decide(&st, &sample, &targets, &act) > 0) apply(&act);
 * pol_decide remembers what it already did, so it never returns the same step twice. */
#ifndef GODWIT_POLICY_H
#define GODWIT_POLICY_H

#include <stdint.h>

struct pol_targets {
	int64_t max_downtime_ns;	/* QEMU's downtime-limit; default 50 ms (see the doc) */
	int64_t max_total_ns;		/* cancel after this (not in post-copy); default 60 s */
	uint64_t bandwidth_cap;		/* bytes/s, 0 = uncapped */
	uint64_t mem_bytes;		/* guest RAM: bounds the xbzrle cache */
	int allow_xbzrle, allow_throttle, allow_postcopy;
};

/* What to set before `migrate` starts. */
struct pol_setup {
	int cap_xbzrle, cap_auto_converge, cap_postcopy;
	uint64_t max_bandwidth;		/* bytes/s for migrate-set-parameters max-bandwidth */
	uint64_t downtime_limit_ms;
	uint64_t xbzrle_cache_size;	/* bytes; the starting (small) cache when cap_xbzrle */
	uint64_t throttle_trigger_threshold;	/* percent, when cap_auto_converge */
};

/* One query-migrate sample, normalised to bytes and bytes/s by the caller. */
struct pol_sample {
	int64_t elapsed_ns;		/* since `migrate` was issued */
	uint64_t remaining;		/* ram.remaining */
	uint64_t transferred;		/* ram.transferred */
	uint64_t total;			/* ram.total */
	double rate;			/* ram.mbps * 1e6 / 8: wire bytes/s */
	double dirty_rate;		/* ram.dirty-pages-rate * page-size: bytes/s */
	uint64_t dirty_sync_count;	/* ram.dirty-sync-count: rounds started */
	double xbzrle_encoding_rate;	/* xbzrle-cache.encoding-rate (raw/encoded), 0 if none */
	double xbzrle_miss_rate;	/* xbzrle-cache.cache-miss-rate 0..1 */
	int postcopy_active;		/* status is postcopy-active */
};

/* What the policy remembers between samples. Zero it (or pol_initial does) before the first. */
struct pol_state {
	int xbzrle_on;			/* capability was set up front */
	uint64_t xbzrle_cache;		/* current cache size, 0 = not yet sized */
	int throttling, postcopy, cancelled;
	uint64_t last_round;		/* dirty_sync_count seen last */
	uint64_t step_round;		/* round of the last escalation */
	uint64_t working_set;		/* max bytes left at a round start (round >= 2) */
	uint64_t downtime_ms;		/* QEMU's downtime-limit now (pol_initial sets it) */
	uint64_t best_remaining;	/* lowest `remaining` seen at a round start (round >= 2) */
	uint64_t best_round;		/* the round it was seen in (0 = none yet) */
	double link_rate;		/* the fastest rate seen: the link's, measured while there
					 * was plenty to send (bytes/s) */
	uint64_t switchover_bw;		/* what QEMU was told it is (0 = nothing yet) */
};

enum pol_action_kind {
	POL_CONTINUE = 0,
	POL_SET_XBZRLE_CACHE,		/* migrate-set-parameters xbzrle-cache-size = value */
	POL_THROTTLE,			/* throttle-trigger-threshold = 1, cpu-throttle-initial = value,
					 * cpu-throttle-increment = value2 (percent) */
	POL_START_POSTCOPY,		/* migrate-start-postcopy */
	POL_CANCEL,			/* migrate_cancel, resume the source; reason says why */
	POL_SET_DOWNTIME,		/* migrate-set-parameters downtime-limit = value (ms) */
	POL_SET_SWITCHOVER_BW,		/* migrate-set-parameters avail-switchover-bandwidth =
					 * value (bytes/s) */
};

struct pol_action {
	enum pol_action_kind kind;
	uint64_t value, value2;
	char reason[160];
};

/* Defaults: 50 ms, 60 s, uncapped, xbzrle + throttle + post-copy allowed (godwit's default
 * must always finish; post-copy is the step that does). */
void pol_targets_default(struct pol_targets *t, uint64_t mem_bytes);

/* Free-page hints (docs/migration-policy.md, "Free-page hints"): QEMU skips the guest's free
 * pages in a pre-copy move only while post-copy is not armed. 1 if a move under t whose guest's
 * vCPUs ran vcpu_load of the time lately (0 to 1; < 0 unknown) should take the hints and leave
 * post-copy off: a guest that runs less than POL_HINTS_MAX_LOAD of the time cannot write its
 * memory faster than pre-copy sends it, and the throttle stays as the last step. */
#define POL_HINTS_MAX_LOAD 0.5
int pol_hints_first(const struct pol_targets *t, double vcpu_load);

/* Capabilities and starting parameters for t; resets st. */
void pol_initial(const struct pol_targets *t, struct pol_setup *out, struct pol_state *st);

/* Decide the next step for sample s. Returns 1 with an action to apply, 0 with POL_CONTINUE
 * (nothing more to do for this sample), -EINVAL for a nonsensical sample or targets. */
int pol_decide(struct pol_state *st, const struct pol_sample *s, const struct pol_targets *t,
	       struct pol_action *out);

/* "xbzrle-cache", ... for logs. */
const char *pol_action_name(enum pol_action_kind k);

#endif
