/* The environment knobs (include/godwit/knobs.h): the only getenv() below the CLI. */
#include <stdlib.h>

#include "godwit/knobs.h"

static struct gw_knobs knobs;
static int loaded;

/* An empty value counts as unset. */
static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void gw_knobs_load(void)
{
	knobs = (struct gw_knobs){
		.qemu = env("GODWIT_QEMU"),
		.qemu_user = env("GODWIT_QEMU_USER"),
		.snapshot_key = env("GODWIT_SNAPSHOT_KEY"),
		.guest_cmdline = env("GODWIT_GUEST_CMDLINE"),
		.debug_keep = getenv("GODWIT_DEBUG_KEEP") != NULL,
		.mig_trace = getenv("GODWIT_MIG_TRACE") != NULL,
	};
	loaded = 1;
}

const struct gw_knobs *gw_knobs(void)
{
	if (!loaded)
		gw_knobs_load();
	return &knobs;
}
