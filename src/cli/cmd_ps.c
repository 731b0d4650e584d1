/* godwit ps: list containers from the state directory (running ones, or all with -a). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "godwit/container.h"
#include "godwit/util.h"

static void fmt_duration(int64_t ns, char *buf, size_t len)
{
	int64_t s = ns / 1000000000LL;
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

static int is_live(enum ct_state s)
{
	return s == CT_RUNNING || s == CT_PAUSED || s == CT_MIGRATING || s == CT_INCOMING;
}

int cmd_ps(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int all = 0, quiet = 0, c;
	while ((c = getopt_long(argc, argv, "aqh", opts, NULL)) != -1) {
		switch (c) {
		case 'a': all = 1; break;
		case 'q': quiet = 1; break;
		case 'h':
			printf("Usage: godwit ps [-a] [-q]\n\nList containers.\n\n"
			       "  -a, --all    also containers that are not live (created, stopped,\n"
			       "               migrated)\n"
			       "  -q, --quiet  print names only\n"
			       "  -h, --help   this help\n");
			return 0;
		default: return cli_usage_error("ps", "invalid option");
		}
	}
	if (optind != argc)
		return cli_usage_error("ps", "unexpected argument '%s'", argv[optind]);
	struct gw_err err = { 0 };
	char **names;
	if (ct_list(cli->root, &names, &err) < 0)
		return cli_fail("ps", &err);
	if (!quiet)
		printf("%-20s %-24s %-10s %-10s %-8s %-6s %s\n", "NAME", "IMAGE", "STATE", "UPTIME",
		       "MEMORY", "ACCEL", "STATUS");
	int64_t now = gw_now_real_ns();
	for (size_t i = 0; names[i]; i++) {
		struct ct_config cfg = { 0 };
		struct ct_status st;
		if (ct_status_load(cli->root, names[i], &st, &err) < 0)
			continue;
		/* an incoming container has no config until its source sends one */
		int have_cfg = ct_config_load(cli->root, names[i], &cfg, &err) == 0;
		if (!have_cfg && st.state != CT_INCOMING)
			continue;
		if (!have_cfg) {
			snprintf(cfg.name, sizeof(cfg.name), "%s", names[i]);
			snprintf(cfg.image, sizeof(cfg.image), "-");
			snprintf(cfg.accel, sizeof(cfg.accel), "-");
			if (!st.detail[0])
				snprintf(st.detail, sizeof(st.detail), "waiting for the source");
		}
		if (all || is_live(st.state)) {
			if (quiet) {
				printf("%s\n", cfg.name);
			} else {
				char up[32] = "-", mem[16] = "-", status[300], shown[1200];
				if (is_live(st.state) && st.started_ns)
					fmt_duration(now - st.started_ns, up, sizeof(up));
				if (have_cfg)
					snprintf(mem, sizeof(mem), "%lluM",
						 (unsigned long long)(cfg.mem_bytes >> 20));
				if (st.state == CT_STOPPED && st.exit_status >= 0)
					snprintf(status, sizeof(status), "exited (%d)%s%s",
						 st.exit_status, st.detail[0] ? ": " : "", st.detail);
				else
					snprintf(status, sizeof(status), "%s", st.detail);
				/* a detail may come from a peer (a move's error): escaped */
				gw_escape_ctl(status, shown, sizeof(shown));
				printf("%-20s %-24s %-10s %-10s %-8s %-6s %s\n", cfg.name, cfg.image,
				       ct_state_name(st.state), up, mem, cfg.accel, shown);
			}
		}
		ct_config_free(&cfg); /* a zeroed config too */
	}
	ct_names_free(names);
	return 0;
}
