/* godwit exec: run a second process in a running container and relay its output and status. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/util.h"

int cmd_exec(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "env", required_argument, NULL, 'e' }, { "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' }, { "help", no_argument, NULL, 'h' },
		{ "interactive", no_argument, NULL, 'i' }, { "tty", no_argument, NULL, 't' },
		{ "detach-keys", required_argument, NULL, 'K' }, { 0 },
	};
	struct cli_session_opts so = { .in_fd = -1 };
	const char *keys = CLI_DETACH_DEFAULT;
	json_object *env = json_object_new_array();
	const char *cwd = NULL, *user = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+e:w:u:ith", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				json_object_put(env);
				return cli_usage_error("exec", "invalid --env '%s' (want KEY=VALUE)",
						       optarg);
			}
			json_object_array_add(env, json_object_new_string(optarg));
			break;
		case 'w': cwd = optarg; break;
		case 'u': user = optarg; break;
		case 'i': so.in_fd = 0; break;
		case 't': so.tty = 1; break;
		case 'K': keys = optarg; break;
		case 'h':
			printf("Usage: godwit exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\n"
			       "Run a command in a running container.\n\n"
			       "  -e, --env K=V      set an environment variable (repeatable)\n"
			       "  -w, --workdir DIR  working directory\n"
			       "  -u, --user USER    user[:group] or uid[:gid]\n"
			       "  -i, --interactive  send our stdin to the command's\n"
			       "  -t, --tty          give the command a terminal (in the guest); ours\n"
			       "                     goes raw and its size follows\n"
			       "      --detach-keys KEYS  the keys that detach and leave the command\n"
			       "                     running (default ctrl-p,ctrl-q; \"\": none)\n"
			       "  -h, --help         this help\n");
			json_object_put(env);
			return 0;
		default: json_object_put(env); return cli_usage_error("exec", "invalid option");
		}
	}
	if (argc - optind < 2) {
		json_object_put(env);
		return cli_usage_error("exec", "want CONTAINER and COMMAND");
	}
	if (cli_detach_keys_parse(keys, so.detach, &so.ndetach) < 0) {
		json_object_put(env);
		return cli_usage_error("exec", "invalid --detach-keys '%s' (e.g. ctrl-p,ctrl-q)",
				       keys);
	}
	struct gw_err err = { 0 };
	int fd = cli_connect(cli, argv[optind], &err);
	if (fd < 0) {
		json_object_put(env);
		return cli_fail("exec", &err);
	}
	json_object *args = json_object_new_object();
	json_object *av = json_object_new_array();
	for (int i = optind + 1; i < argc; i++)
		json_object_array_add(av, json_object_new_string(argv[i]));
	json_object_object_add(args, "argv", av);
	json_object_object_add(args, "env", env);
	if (cwd)
		json_object_object_add(args, "cwd", json_object_new_string(cwd));
	if (user)
		json_object_object_add(args, "user", json_object_new_string(user));
	if (so.in_fd >= 0)
		json_object_object_add(args, "stdin", json_object_new_boolean(1));
	if (so.tty) {
		/* as docker: a terminal says what it is, unless -e says otherwise */
		json_object *e0 = json_object_new_array();
		json_object_array_add(e0, json_object_new_string("TERM=xterm"));
		for (size_t i = 0; i < json_object_array_length(env); i++)
			json_object_array_add(e0, json_object_get(json_object_array_get_idx(env, i)));
		json_object_object_add(args, "env", e0);
		json_object_object_add(args, "tty", json_object_new_boolean(1));
		struct winsize ws;
		if (ioctl(isatty(0) ? 0 : 1, TIOCGWINSZ, &ws) == 0) {
			json_object_object_add(args, "rows", json_object_new_int(ws.ws_row));
			json_object_object_add(args, "cols", json_object_new_int(ws.ws_col));
		}
	}
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, "exec", args, NULL, NULL, NULL, 10000, &err);
	json_object_put(args);
	int status = -1;
	so.sigfd = r == 0 ? cli_signals_forwarded() : -1;
	if (r == 0)
		r = cli_session_run(fd, &rd, &so, &status, &err);
	if (so.sigfd >= 0)
		close(so.sigfd);
	ctl_reader_free(&rd);
	close(fd);
	if (r == CLI_DETACHED)
		return 0;
	if (r < 0)
		return cli_fail("exec", &err);
	if (status < 0) {
		fprintf(stderr, "godwit exec: the container stopped before the command finished\n");
		return GW_EXIT_ERROR;
	}
	return status;
}
