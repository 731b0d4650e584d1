/* godwit exec: run a second process in a running container and relay its output and status. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/util.h"

int cmd_exec(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "env", required_argument, NULL, 'e' }, { "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	json_object *env = json_object_new_array();
	const char *cwd = NULL, *user = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+e:w:u:h", opts, NULL)) != -1) {
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
		case 'h':
			printf("Usage: godwit exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\n"
			       "Run a command in a running container.\n\n"
			       "  -e, --env K=V      set an environment variable (repeatable)\n"
			       "  -w, --workdir DIR  working directory\n"
			       "  -u, --user USER    user[:group] or uid[:gid]\n"
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
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, "exec", args, NULL, NULL, NULL, 10000, &err);
	json_object_put(args);
	int status = -1;
	int sigfd = r == 0 ? cli_signals_forwarded() : -1;
	if (r == 0)
		r = cli_stream_events_fwd(fd, &rd, &status, sigfd, &err);
	if (sigfd >= 0)
		close(sigfd);
	ctl_reader_free(&rd);
	close(fd);
	if (r < 0)
		return cli_fail("exec", &err);
	if (status < 0) {
		fprintf(stderr, "godwit exec: the container stopped before the command finished\n");
		return GW_EXIT_ERROR;
	}
	return status;
}
