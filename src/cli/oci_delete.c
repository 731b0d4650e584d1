/* godwit-runtime delete [--force] ID: the container's record and disk go; a live one only
 * with --force (its VM is stopped at once). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "oci.h"

int oci_delete(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int force = 0, c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'h':
			printf("Usage: godwit-runtime delete [--force] ID\n\nRemove a container, its "
			       "disk and its record.\n\n"
			       "  -f, --force  a created, running or paused one too (stopped at once);\n"
			       "               no error when there is none\n");
			return 0;
		default: return oci_failf(rt, "delete: invalid option");
		}
	}
	if (argc - optind != 1)
		return oci_failf(rt, "delete: want one container ID");
	const char *id = argv[optind];
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, id, &rec, &err) < 0) {
		/* as runc: --force makes sure it is gone, and gone it is (podman deletes with
		 * --force after a failed create) */
		if (force && err.code == ENOENT)
			return 0;
		return oci_fail(rt, &err);
	}
	const char *status = oci_status(rec.st.state);
	oci_rec_free(&rec);
	/* runc deletes a created container without --force (nothing of it has run) */
	if (!force && strcmp(status, "stopped") && strcmp(status, "created"))
		return oci_failf(rt, "cannot delete container %s that is not stopped: %s", id,
				 status);
	if (cli_rm_one(&rt->cli, id, 1, &err) < 0)
		return oci_fail(rt, &err);
	return 0;
}
