/* godwit-runtime's entry point: runc's global options, then one oci_<verb>.c per verb
 * (docs/oci-runtime.md). Errors go to stderr and, as runc does, to --log. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"
#include "godwit/knobs.h"
#include "godwit/util.h"
#include "godwit/version.h"

static const struct {
	const char *name;
	int (*fn)(struct oci_rt *, int, char **);
	const char *help;
} VERBS[] = {
	{ "create", oci_create, "create a container from a bundle: its VM boots, its process "
				"waits for start" },
	{ "start", oci_start, "run the created container's process" },
	{ "state", oci_state, "print the container's state as JSON" },
	{ "kill", oci_kill, "send a signal to the container's process" },
	{ "exec", oci_exec, "run another process in the running container" },
	{ "pause", oci_pause, "pause the container's VM" },
	{ "resume", oci_resume, "resume a paused container's VM" },
	{ "ps", oci_ps, "the container's host processes (its shim and QEMU)" },
	{ "delete", oci_delete, "remove a stopped container (--force: any)" },
	{ "update", oci_update, "update resources (a VM's memory and vCPUs stay as they are)" },
	{ "features", oci_features, "print what this runtime supports as JSON" },
};

/* runc verbs this runtime does not have yet: a clear refusal, not "unknown" */
static const char *const LATER[] = { "run",
				     "checkpoint", "restore", "events", "list", "spec" };

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit-runtime [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
		   "An OCI runtime with runc's command line that runs each container in its own\n"
		   "QEMU virtual machine (godwit's). For podman: --runtime PATH-TO-godwit-runtime.\n\n"
		   "Global options:\n"
		   "      --root DIR          state directory (default " OCI_ROOT_DEFAULT ")\n"
		   "      --log FILE          also write errors to FILE\n"
		   "      --log-format FMT    text or json (default text)\n"
		   "      --systemd-cgroup    accepted; the VM is the container's boundary\n"
		   "      --debug             accepted\n"
		   "  -h, --help              this help\n"
		   "  -v, --version           print the version\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(VERBS); i++)
		fprintf(f, "  %-9s %s\n", VERBS[i].name, VERBS[i].help);
}

static void log_line(const struct oci_rt *rt, const char *msg)
{
	FILE *f = rt->log && *rt->log ? fopen(rt->log, "ae") : NULL;
	if (!f)
		return;
	if (rt->log_json) {
		char ts[40];
		gw_fmt_rfc3339(gw_now_real_ns(), ts);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "level", json_object_new_string("error"));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		json_object_object_add(o, "time", json_object_new_string(ts));
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		fprintf(f, "godwit-runtime: %s\n", msg);
	}
	fclose(f);
}

int oci_fail(const struct oci_rt *rt, const struct gw_err *err)
{
	char msg[4 * GW_ERR_MSG_MAX + 1];
	gw_escape_ctl(err->msg[0] ? err->msg : "failed", msg, sizeof(msg));
	fprintf(stderr, "godwit-runtime: %s\n", msg);
	log_line(rt, msg);
	return 1;
}

int oci_failf(const struct oci_rt *rt, const char *fmt, ...)
{
	struct gw_err err = { 0 };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	return oci_fail(rt, &err);
}

int main(int argc, char **argv)
{
	gw_knobs_load();
	struct oci_rt rt = { .cli = { .root = OCI_ROOT_DEFAULT, .accel = "auto",
				      .argv0 = argv[0] } };
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "systemd-cgroup", no_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rt.cli.root = optarg; break;
		case 'l': rt.log = optarg; break;
		case 'f':
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return oci_failf(&rt, "--log-format must be text or json, not \"%s\"",
						 optarg);
			rt.log_json = !strcmp(optarg, "json");
			break;
		case 's': case 'd': break;
		case 'h': usage(stdout); return 0;
		case 'v':
			printf("godwit-runtime version %s\nspec: %s\n", GODWIT_VERSION, OCI_VERSION);
			return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	if (rt.cli.root[0] != '/')
		return oci_failf(&rt, "--root must be an absolute path, not \"%s\"", rt.cli.root);
	const char *verb = argv[optind];
	for (size_t i = 0; i < ARRAY_SIZE(VERBS); i++) {
		if (!strcmp(VERBS[i].name, verb)) {
			/* each verb parses its own options (argv[0]: the verb); getopt starts
			 * over */
			int at = optind;
			optind = 0;
			return VERBS[i].fn(&rt, argc - at, argv + at);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(LATER); i++)
		if (!strcmp(LATER[i], verb))
			return oci_failf(&rt, "\"%s\" is not supported by godwit-runtime yet "
					 "(docs/oci-runtime.md)", verb);
	return oci_failf(&rt, "unknown command \"%s\" (godwit-runtime --help)", verb);
}
