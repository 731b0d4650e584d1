/* godwit start: a stopped container boots again from its own disk, with its config, network
 * address and output log (appended to), as `docker start` does. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/util.h"

int cli_start_one(struct gw_cli *cli, const char *name, int arg, struct gw_err *err)
{
	(void)arg;
	struct ct_status st;
	int r = ct_status_load(cli->root, name, &st, err);
	if (r < 0)
		return r;
	if (st.state == CT_MIGRATED)
		return gw_err_set(err, EINVAL, "container %s has migrated away (%s): it runs "
				  "elsewhere now", name, st.detail);
	if (st.state == CT_INCOMING)
		return gw_err_set(err, EINVAL, "container %s is incoming: it is not here yet", name);
	if (st.state != CT_STOPPED)
		return 0; /* it runs: nothing to do, as docker's start */
	struct ct_config cfg;
	if ((r = ct_config_load(cli->root, name, &cfg, err)) < 0)
		return r;
	int oci = cfg.netns != NULL;
	ct_config_free(&cfg);
	if (oci)
		return gw_err_set(err, EINVAL, "container %s is godwit-runtime's (its caller, "
				  "podman, starts it)", name);
	return cli_spawn_shim(cli, name, NULL, err);
}

int cmd_start(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "attach", no_argument, NULL, 'a' }, { "interactive", no_argument, NULL, 'i' },
		{ "detach-keys", required_argument, NULL, 'K' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cli_session_opts so = { .in_fd = -1 };
	const char *keys = CLI_DETACH_DEFAULT;
	int c, attach = 0;
	while ((c = getopt_long(argc, argv, "aih", opts, NULL)) != -1) {
		switch (c) {
		case 'a': attach = 1; break;
		case 'i': so.in_fd = 0; break;
		case 'K': keys = optarg; break;
		case 'h':
			printf("Usage: godwit start [-a] [-i] CONTAINER...\n\nStart stopped containers "
			       "again from their disks (their output log goes on).\n\n"
			       "  -a, --attach       attach to its output (and its tty) until it exits\n"
			       "  -i, --interactive  and send our stdin to it (if run with -i)\n"
			       "      --detach-keys KEYS  the keys that detach a tty session\n"
			       "                     (default ctrl-p,ctrl-q; \"\": none)\n"
			       "  -h, --help         this help\n");
			return 0;
		default: return cli_usage_error("start", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("start", "want at least one CONTAINER");
	if (!attach && so.in_fd < 0)
		return cli_for_each(cli, "start", argc - optind, argv + optind, 0, cli_start_one);
	/* docker start -a / -i: one container, then its session as a foreground run's */
	if (argc - optind != 1)
		return cli_usage_error("start", "-a and -i take one CONTAINER");
	if (cli_detach_keys_parse(keys, so.detach, &so.ndetach) < 0)
		return cli_usage_error("start", "invalid --detach-keys '%s' (e.g. ctrl-p,ctrl-q)",
				       keys);
	const char *name = argv[optind];
	struct gw_err err = { 0 };
	struct ct_config cfg = { 0 };
	if (ct_config_load(cli->root, name, &cfg, &err) < 0 || cli_start_one(cli, name, 0, &err) < 0)
		return cli_fail("start", &err);
	so.tty = cfg.tty;
	if (!cfg.open_stdin)
		so.in_fd = -1;
	int wait_down = cfg.restart == CT_RESTART_NO;
	ct_config_free(&cfg);
	/* from now on: the log of its earlier runs is `godwit logs`'s */
	return cli_attach_session(cli, "start", name, &so, 0, wait_down);
}
