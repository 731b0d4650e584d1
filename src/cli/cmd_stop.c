/* godwit stop: ask a container to stop (SIGTERM, then SIGKILL after the timeout) and wait
 * until its VM is gone. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/util.h"

/* An incoming container's shim serves no requests while it waits for (or takes in) the
 * source's stream: SIGTERM ends its wait (the source, if connected, sees a failed move and
 * keeps running). A shim still there after the timeout (it does not watch SIGTERM while it
 * takes the stream) is an error here; `rm -f` then kills it and its QEMU. */
static int stop_incoming(const char *name, const struct ct_status *st, int timeout_s,
			 struct gw_err *err)
{
	if (st->shim_pid <= 0)
		return gw_err_set(err, ESRCH, "container %s is incoming but has no shim", name);
	kill(st->shim_pid, SIGTERM);
	int64_t end = gw_now_mono_ns() + (int64_t)(timeout_s + 10) * 1000000000LL;
	while (ct_shim_alive(st->shim_pid) && gw_now_mono_ns() < end)
		poll(NULL, 0, 20);
	if (!ct_shim_alive(st->shim_pid))
		return 0;
	return gw_err_set(err, ETIMEDOUT, "container %s did not stop", name);
}

int cli_stop_one(struct gw_cli *cli, const char *name, int timeout_s, struct gw_err *err)
{
	struct ct_status st;
	if (ct_status_load(cli->root, name, &st, err) == 0 && st.state == CT_INCOMING)
		return stop_incoming(name, &st, timeout_s, err);
	int fd = cli_connect(cli, name, err);
	if (fd < 0)
		return fd;
	struct ctl_reader rd = { 0 };
	json_object *args = json_object_new_object();
	json_object_object_add(args, "timeout", json_object_new_int(timeout_s));
	int r = ctl_call(fd, &rd, "stop", args, NULL, NULL, NULL, 10000, err);
	json_object_put(args);
	ctl_reader_free(&rd);
	if (r == 0 && cli_wait_closed(fd, (timeout_s + 20) * 1000) < 0)
		r = gw_err_set(err, ETIMEDOUT, "container %s did not stop", name);
	close(fd);
	return r;
}

int cmd_stop(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int timeout = 10, c;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_time_opt("stop", optarg, &timeout))
				return GW_EXIT_ERROR;
			break;
		case 'h':
			printf("Usage: godwit stop [-t SECONDS] CONTAINER...\n\nStop running "
			       "containers: SIGTERM, then SIGKILL after the timeout.\n\n"
			       "  -t, --time SECONDS  seconds between SIGTERM and SIGKILL (0 to 3600;\n"
			       "                      default 10)\n"
			       "  -h, --help          this help\n");
			return 0;
		default: return cli_usage_error("stop", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("stop", "want at least one CONTAINER");
	return cli_for_each(cli, "stop", argc - optind, argv + optind, timeout, cli_stop_one);
}
