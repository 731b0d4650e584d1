/* The environment knobs of godwit's processes, in one place (docs/troubleshooting.md lists
 * them with their defaults): read from the environment once, by gw_knobs_load() at the start
 * of the CLI and of the shim (or at the first gw_knobs() call), and then only read through
 * this struct. The CLI's own settings (GODWIT_ROOT, GODWIT_KIT) stay with its flags. */
#ifndef GODWIT_KNOBS_H
#define GODWIT_KNOBS_H

struct gw_knobs {
	const char *qemu;		/* GODWIT_QEMU: the QEMU binary (NULL: on PATH) */
	const char *qemu_user;		/* GODWIT_QEMU_USER: the user QEMU runs as (NULL: godwit-qemu) */
	const char *snapshot_key;	/* GODWIT_SNAPSHOT_KEY: a key file; snapshots get an HMAC */
	const char *guest_cmdline;	/* GODWIT_GUEST_CMDLINE: appended to the guest kernel's */
	int debug_keep;			/* GODWIT_DEBUG_KEEP set: a failed restore keeps its files */
	int mig_trace;			/* GODWIT_MIG_TRACE set: each migration step to shim.log */
};

/* (Re)read the knobs from the environment. */
void gw_knobs_load(void);
/* The knobs (loaded at the first call if gw_knobs_load() was not). */
const struct gw_knobs *gw_knobs(void);

#endif
