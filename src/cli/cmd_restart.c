/* godwit restart: stop (SIGTERM, SIGKILL after the timeout) and start again from the disk. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "godwit/container.h"

static int restart_one(struct gw_cli *cli, const char *name, int timeout_s, struct gw_err *err)
{
	struct ct_status st;
	int r = ct_status_load(cli->root, name, &st, err);
	if (r == 0 && (st.state == CT_RUNNING || st.state == CT_PAUSED))
		r = cli_stop_one(cli, name, timeout_s, err);
	return r < 0 ? r : cli_start_one(cli, name, 0, err);
}

int cmd_restart(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int timeout = 10, c;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_time_opt("restart", optarg, &timeout))
				return GW_EXIT_ERROR;
			break;
		case 'h':
			printf("Usage: godwit restart [-t SECONDS] CONTAINER...\n\nStop containers "
			       "(SIGTERM, SIGKILL after the timeout) and start them again\nfrom their "
			       "disks.\n\n"
			       "  -t, --time SECONDS  seconds between SIGTERM and SIGKILL (0 to 3600;\n"
			       "                      default 10)\n"
			       "  -h, --help          this help\n");
			return 0;
		default: return cli_usage_error("restart", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("restart", "want at least one CONTAINER");
	return cli_for_each(cli, "restart", argc - optind, argv + optind, timeout, restart_one);
}
