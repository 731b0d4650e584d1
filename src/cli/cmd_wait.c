/* godwit wait: block until each container has stopped, then print its exit code, one a line
 * (docker's wait). The shim exits when its container stops: its control socket closing is the
 * moment, no polling. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"

static int wait_one(struct gw_cli *cli, const char *name, int *code, struct gw_err *err)
{
	struct ct_status st;
	int r;
	for (;;) {
		if ((r = ct_status_load(cli->root, name, &st, err)) < 0)
			return r;
		if (st.state == CT_STOPPED || st.state == CT_MIGRATED)
			break;
		struct gw_err ignored = { 0 };
		int fd = cli_connect(cli, name, &ignored);
		if (fd < 0) {
			usleep(100000); /* between its state and its socket: look again */
			continue;
		}
		while (cli_wait_closed(fd, 3600 * 1000) == -ETIMEDOUT)
			;
		close(fd);
	}
	if (st.state == CT_MIGRATED)
		return gw_err_set(err, EINVAL, "container %s migrated away (%s): its exit code is "
				  "another host's", name, st.detail);
	*code = st.exit_status < 0 ? 0 : st.exit_status;
	return 0;
}

int cmd_wait(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: godwit wait CONTAINER...\n\nWait until containers stop, then "
			       "print their exit codes, one a line.\n\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("wait", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("wait", "want at least one CONTAINER");
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct gw_err err = { 0 };
		int code = 0;
		if (wait_one(cli, argv[i], &code, &err) < 0)
			rc = cli_fail("wait", &err);
		else
			printf("%d\n", code);
		fflush(stdout);
	}
	return rc;
}
