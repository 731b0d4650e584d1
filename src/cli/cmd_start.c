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
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: godwit start CONTAINER...\n\nStart stopped containers again "
			       "from their disks (their output log goes on).\n\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("start", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("start", "want at least one CONTAINER");
	return cli_for_each(cli, "start", argc - optind, argv + optind, 0, cli_start_one);
}
