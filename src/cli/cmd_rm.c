/* godwit rm: remove containers that are not running (-f: stop them first). */
#include <getopt.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "godwit/container.h"
#include "godwit/util.h"

int cli_rm_one(struct gw_cli *cli, const char *name, int force, struct gw_err *err)
{
	struct ct_status st;
	int r = ct_status_load(cli->root, name, &st, err);
	if (r < 0)
		return r;
	/* an incoming container has no config until its source sends one */
	char network[sizeof(((struct ct_config *)0)->network)] = "";
	if (st.state != CT_INCOMING) {
		struct ct_config cfg;
		if ((r = ct_config_load(cli->root, name, &cfg, err)) < 0)
			return r;
		snprintf(network, sizeof(network), "%s", cfg.network);
		ct_config_free(&cfg);
	}
	if (st.state != CT_STOPPED && st.state != CT_MIGRATED) {
		if (!force)
			return gw_err_set(err, EBUSY, "container %s is %s: stop it first or use -f",
					  name, ct_state_name(st.state));
		if (cli_stop_one(cli, name, 0, err) < 0 && st.shim_pid > 0) {
			/* the shim does not answer: end it and its VM the hard way */
			if (st.qemu_pid > 0)
				kill(st.qemu_pid, SIGKILL);
			kill(st.shim_pid, SIGKILL);
		}
	}
	/* its lease, and a tap that a killed shim could not take away */
	run_net_detach(cli, name, network);
	cleanup_free char *dir = ct_dir(cli->root, name);
	return gw_rm_rf(dir, err);
}

int cmd_rm(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int force = 0, c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'h':
			printf("Usage: godwit rm [-f] CONTAINER...\n\nRemove containers and their "
			       "logs and disks.\n\n"
			       "  -f, --force  stop live containers first (at once, no grace period)\n"
			       "  -h, --help   this help\n");
			return 0;
		default: return cli_usage_error("rm", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("rm", "want at least one CONTAINER");
	return cli_for_each(cli, "rm", argc - optind, argv + optind, force, cli_rm_one);
}
