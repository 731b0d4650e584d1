/* godwit-runtime ps [--format table|json] ID: the host processes that are the container (runc
 * lists its cgroup's): its shim and its VM's QEMU. What runs inside the guest is the guest
 * kernel's business; `godwit exec ID ps` shows it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "oci.h"

int oci_ps(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "table") && strcmp(optarg, "json"))
				return oci_failf(rt, "ps: --format must be table or json");
			json = !strcmp(optarg, "json");
			break;
		case 'h':
			printf("Usage: godwit-runtime ps [--format table|json] ID\n\nThe container's "
			       "host processes: its shim and its VM's QEMU.\n\n"
			       "  -f, --format FMT  table (default) or json (an array of pids)\n");
			return 0;
		default: return oci_failf(rt, "ps: invalid option");
		}
	}
	/* runc passes anything after the id to ps(1); there is no ps(1) of the host here */
	if (argc - optind < 1)
		return oci_failf(rt, "ps: want a container ID");
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, argv[optind], &rec, &err) < 0)
		return oci_fail(rt, &err);
	int live = strcmp(oci_status(rec.st.state), "stopped") != 0;
	pid_t pids[2] = { live ? rec.st.shim_pid : 0, live ? rec.st.qemu_pid : 0 };
	oci_rec_free(&rec);
	if (json) {
		json_object *a = json_object_new_array();
		for (int i = 0; i < 2; i++)
			if (pids[i] > 0)
				json_object_array_add(a, json_object_new_int(pids[i]));
		printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
		json_object_put(a);
		return 0;
	}
	printf("PID\tCMD\n");
	for (int i = 0; i < 2; i++)
		if (pids[i] > 0)
			printf("%d\t%s\n", (int)pids[i], i ? "qemu-system-x86_64" : "godwit-shim");
	return 0;
}
