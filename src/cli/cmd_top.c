/* godwit top: the processes of a running container, as its guest's agent sees them in the
 * guest's /proc (every process but the agent itself): docker top's view, from inside the VM. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/util.h"

static const char *gets_(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

int cmd_top(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: godwit top CONTAINER\n\nShow the processes running in a "
			       "container's guest (all but godwit's agent).\n\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("top", "invalid option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("top", "want one CONTAINER");
	struct gw_err err = { 0 };
	json_object *ans, *ps;
	if (cli_guest_query(cli, argv[optind], "ps", &ans, &err) < 0)
		return cli_fail("top", &err);
	printf("%-6s %-6s %-6s %-4s %-9s %-10s %s\n", "UID", "PID", "PPID", "STAT", "RSS", "TIME",
	       "CMD");
	for (size_t i = 0; json_object_object_get_ex(ans, "ps", &ps) &&
			   i < json_object_array_length(ps); i++) {
		json_object *p = json_object_array_get_idx(ps, i);
		int64_t ms = cli_json_int(p, "cpu_ms");
		char t[32], rss[24];
		snprintf(t, sizeof(t), "%lld:%02lld.%02lld", (long long)(ms / 60000),
			 (long long)(ms / 1000 % 60), (long long)(ms / 10 % 100));
		snprintf(rss, sizeof(rss), "%lldk", (long long)cli_json_int(p, "rss_kb"));
		printf("%-6lld %-6lld %-6lld %-4s %-9s %-10s %s\n", (long long)cli_json_int(p, "uid"),
		       (long long)cli_json_int(p, "pid"), (long long)cli_json_int(p, "ppid"),
		       gets_(p, "state"), rss, t, gets_(p, "cmd"));
	}
	json_object_put(ans);
	return 0;
}
