/* godwit-runtime pause ID / resume ID: the container's VM stops and goes on (the shim's pause
 * and resume: QEMU's vCPUs stop; memory, connections and the clock's view stay). */
#include <stdio.h>
#include <string.h>

#include "oci.h"

static int pause_or_resume(struct oci_rt *rt, int argc, char **argv, int pause)
{
	const char *verb = pause ? "pause" : "resume";
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: godwit-runtime %s ID\n\n%s the container's VM.\n", verb,
		       pause ? "Pause" : "Resume");
		return 0;
	}
	if (argc != 2)
		return oci_failf(rt, "%s: want one container ID", verb);
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, argv[1], &rec, &err) < 0)
		return oci_fail(rt, &err);
	enum ct_state s = rec.st.state;
	oci_rec_free(&rec);
	/* runc's words */
	if (pause && s != CT_RUNNING)
		return oci_failf(rt, "container not running");
	if (!pause && s != CT_PAUSED)
		return oci_failf(rt, "container not paused");
	return oci_shim_call(rt, argv[1], verb, NULL);
}

int oci_pause(struct oci_rt *rt, int argc, char **argv)
{
	return pause_or_resume(rt, argc, argv, 1);
}

int oci_resume(struct oci_rt *rt, int argc, char **argv)
{
	return pause_or_resume(rt, argc, argv, 0);
}
