/* godwit-runtime start ID: the created container's process runs (the shim's "start"). */
#include <stdio.h>
#include <string.h>

#include "oci.h"

int oci_start(struct oci_rt *rt, int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: godwit-runtime start ID\n\nRun the process of a created "
		       "container.\n");
		return 0;
	}
	if (argc != 2)
		return oci_failf(rt, "start: want one container ID");
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, argv[1], &rec, &err) < 0)
		return oci_fail(rt, &err);
	enum ct_state s = rec.st.state;
	oci_rec_free(&rec);
	/* runc's words for a container past created */
	if (s != CT_CREATED)
		return oci_failf(rt, "cannot start %s", strcmp(oci_status(s), "stopped")
			? "an already running container" : "a container that has stopped");
	return oci_shim_call(rt, argv[1], "start", NULL);
}
