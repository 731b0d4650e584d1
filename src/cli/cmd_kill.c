/* godwit kill: a signal to containers' main processes, SIGKILL unless -s says another (as
 * docker's kill); the container stops when its process does. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"

static int kill_one(struct gw_cli *cli, const char *name, int sig, struct gw_err *err)
{
	struct ct_status st;
	int r = ct_status_load(cli->root, name, &st, err);
	if (r < 0)
		return r;
	if (st.state == CT_PAUSED)
		return gw_err_set(err, EINVAL, "container %s is paused", name);
	if (st.state != CT_RUNNING && st.state != CT_CREATED)
		return gw_err_set(err, EINVAL, "container %s is not running (%s)", name,
				  ct_state_name(st.state));
	int fd = cli_connect(cli, name, err);
	if (fd < 0)
		return fd;
	json_object *args = json_object_new_object();
	json_object_object_add(args, "signal", json_object_new_int(sig));
	json_object_object_add(args, "chan", json_object_new_int(0));
	struct ctl_reader rd = { 0 };
	r = ctl_call(fd, &rd, "signal", args, NULL, NULL, NULL, 10000, err);
	json_object_put(args);
	ctl_reader_free(&rd);
	close(fd);
	return r;
}

int cmd_kill(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signal", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int sig = SIGKILL, c;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if ((sig = cli_parse_signal(optarg)) < 0)
				return cli_usage_error("kill", "invalid signal '%s'", optarg);
			break;
		case 'h':
			printf("Usage: godwit kill [-s SIGNAL] CONTAINER...\n\nSend a signal to "
			       "containers' main processes.\n\n"
			       "  -s, --signal SIGNAL  a name (TERM, SIGHUP) or number (default KILL)\n"
			       "  -h, --help           this help\n");
			return 0;
		default: return cli_usage_error("kill", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("kill", "want at least one CONTAINER");
	return cli_for_each(cli, "kill", argc - optind, argv + optind, sig, kill_one);
}
