/* Under TCG a live move runs with the guest's TLB flusher on (docs/migration.md, "Lost writes
 * under TCG"): QEMU 7.2 loses stores made through TLB entries filled before a dirty-bitmap
 * sync, so the guest agent empties every vCPU's TLB each MIG_TCG_FLUSH_US while QEMU syncs.
 * The source asks for it as soon as the destination has the CONFIG (so the agent starts it
 * while the destination starts its QEMU), waits for the agent's answer (every vCPU has flushed
 * once) before QEMU's `migrate`, and turns it off again when its guest runs on after a failed
 * move; the flusher's state travels with the guest's memory, so a destination turns it off
 * once its guest runs. KVM tracks dirty pages in the host kernel: nothing to do there. */
#include <stdio.h>

#include "godwit/frame.h"
#include "migrate.h"

#define MIG_TCG_FLUSH_US 1000	/* bench/migrate.sh and tests/e2e: guests healthy with it */
#define MIG_TCG_FLUSH_WAIT_MS 3000

/* GODWIT_TCG_TLBFLUSH_US overrides the period (0 turns the flusher off: for measurements) */
static long flush_period(const struct container *ct)
{
	if (ct->accel != HV_ACCEL_TCG)
		return 0;
	return mig_env_long("GODWIT_TCG_TLBFLUSH_US", GW_TLBFLUSH_MIN_US, GW_TLBFLUSH_MAX_US,
			    MIG_TCG_FLUSH_US, 0);
}

void mig_tcg_flush_on(struct container *ct)
{
	struct gw_err e = { 0 };
	long us = flush_period(ct);
	if (us && alink_tlbflush(ct, us, &e) < 0)
		fprintf(stderr, "shim %s: guest TLB flusher: %s\n", ct->cfg.name, e.msg);
}

void mig_tcg_flush_confirm(struct container *ct)
{
	struct gw_err e = { 0 };
	long us = flush_period(ct);
	/* an agent that cannot flush still moves; its guest is exposed as bare QEMU's is */
	if (us && alink_tlbflush_wait(ct, us, MIG_TCG_FLUSH_WAIT_MS, &e) < 0)
		fprintf(stderr, "shim %s: guest TLB flusher not confirmed: %s\n", ct->cfg.name,
			e.msg);
}

void mig_tcg_flush_off(struct container *ct)
{
	if (ct->accel == HV_ACCEL_TCG)
		alink_tlbflush(ct, 0, NULL);
}
