/* godwit-runtime kill [--all] ID [SIGNAL]: a signal (name or number, default SIGTERM) to the
 * container's process; a created container, whose process has not run, ends. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "oci.h"

int oci_kill(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (c) {
		case 'a': break; /* the process ends, and the VM with it: everything in it */
		case 'h':
			printf("Usage: godwit-runtime kill [--all] ID [SIGNAL]\n\nSend SIGNAL (a name "
			       "or number; default SIGTERM) to the container's process.\n\n"
			       "  -a, --all  accepted: the container's VM ends with its process\n");
			return 0;
		default: return oci_failf(rt, "kill: invalid option");
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return oci_failf(rt, "kill: want ID and an optional SIGNAL");
	const char *id = argv[optind];
	int sig = argc - optind == 2 ? cli_parse_signal(argv[optind + 1]) : SIGTERM;
	if (sig < 0)
		return oci_failf(rt, "kill: invalid signal \"%.32s\"", argv[optind + 1]);
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, id, &rec, &err) < 0)
		return oci_fail(rt, &err);
	const char *status = oci_status(rec.st.state);
	oci_rec_free(&rec);
	if (!strcmp(status, "stopped"))
		return oci_failf(rt, "container not running");
	json_object *args = json_object_new_object();
	json_object_object_add(args, "signal", json_object_new_int(sig));
	json_object_object_add(args, "chan", json_object_new_int(0));
	int r = oci_shim_call(rt, id, "signal", args);
	json_object_put(args);
	return r;
}
