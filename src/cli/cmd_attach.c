/* godwit attach: join a running container's main process as `run` does in the foreground:
 * its output from now on, our stdin to its stdin when it was started with -i,
 * our terminal raw and its size followed when it has a tty (-t); the detach keys leave it
 * running. `run` without -d uses the same session (cli_attach_session). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"

int cli_attach_session(struct gw_cli *cli, const char *cmd, const char *name,
		       struct cli_session_opts *o, int logs, int wait_down)
{
	struct gw_err err = { 0 };
	int fd = cli_connect(cli, name, &err);
	if (fd < 0)
		return cli_fail(cmd, &err);
	struct ctl_reader rd = { 0 };
	json_object *args = json_object_new_object();
	json_object_object_add(args, "logs", json_object_new_boolean(logs));
	int r = ctl_call(fd, &rd, "attach", args, NULL, NULL, NULL, 10000, &err);
	json_object_put(args);
	int status = -1;
	/* Ctrl-C and kill reach the container's process (docker's --sig-proxy); with a raw
	 * terminal Ctrl-C is a byte for the container's own terminal instead */
	o->sigfd = r == 0 ? cli_signals_forwarded() : -1;
	if (r == 0)
		r = cli_session_run(fd, &rd, o, &status, &err);
	if (o->sigfd >= 0)
		close(o->sigfd);
	/* as docker: back once the container has stopped (its state says so, a start may
	 * follow at once), or with --rm is gone */
	if (r == 0 && status >= 0 && wait_down)
		cli_wait_closed(fd, 60000);
	ctl_reader_free(&rd);
	close(fd);
	if (r == CLI_DETACHED)
		return 0;
	if (r < 0)
		return cli_fail(cmd, &err);
	if (status >= 0)
		return status;
	struct ct_status st;
	if (ct_status_load(cli->root, name, &st, &err) == 0 && st.state == CT_MIGRATED)
		fprintf(stderr, "godwit %s: container %s migrated away (%s): attach to it there\n",
			cmd, name, st.detail);
	else
		fprintf(stderr, "godwit %s: the container's VM stopped without an exit status\n",
			cmd);
	return GW_EXIT_ERROR;
}

int cmd_attach(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "detach-keys", required_argument, NULL, 'K' },
		{ "no-stdin", no_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct cli_session_opts o = { 0 };
	const char *keys = CLI_DETACH_DEFAULT;
	int c, no_stdin = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'K': keys = optarg; break;
		case 'S': no_stdin = 1; break;
		case 'h':
			printf("Usage: godwit attach [OPTIONS] CONTAINER\n\n"
			       "Attach to a running container's main process: its output, and with\n"
			       "run -i our stdin, with run -t our terminal (raw, its size followed).\n\n"
			       "      --detach-keys KEYS  the keys that detach and leave it running\n"
			       "                          (default ctrl-p,ctrl-q; \"\": none)\n"
			       "      --no-stdin          do not send our stdin\n"
			       "  -h, --help              this help\n");
			return 0;
		default: return cli_usage_error("attach", "invalid option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("attach", "want one CONTAINER");
	if (cli_detach_keys_parse(keys, o.detach, &o.ndetach) < 0)
		return cli_usage_error("attach", "invalid --detach-keys '%s' (e.g. ctrl-p,ctrl-q)",
				       keys);
	struct gw_err err = { 0 };
	struct ct_config cfg = { 0 };
	if (ct_config_load(cli->root, argv[optind], &cfg, &err) < 0)
		return cli_fail("attach", &err);
	o.tty = cfg.tty;
	o.in_fd = cfg.open_stdin && !no_stdin ? 0 : -1;
	int wait_down = cfg.restart == CT_RESTART_NO;
	ct_config_free(&cfg);
	/* as docker attach: what comes from now on, not the log (godwit logs has it) */
	return cli_attach_session(cli, "attach", argv[optind], &o, 0, wait_down);
}
