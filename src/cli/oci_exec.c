/* godwit-runtime exec: a second process in a running container, as conmon asks for it for
 * `podman exec` (docs/oci-runtime.md): the process from --process FILE (a runtime-spec Process
 * object) or the command line; its output to this process's stdout and stderr. In the
 * foreground this process exits with its status; with --detach a child of ours (in a session of
 * its own, reparented to the caller's subreaper like create's shim) carries the session, its
 * pid goes to --pid-file once the shim has started the process, and its exit status is the
 * process's. With --tty (or process.terminal) the process gets a terminal in the guest: with
 * --console-socket a host terminal's master goes to the caller (oci_console.c) and its slave
 * is this session's stdio (and, detached, its controlling terminal: SIGWINCH says the size
 * changed); without it our own stdio is the terminal. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci.h"
#include "shimctl.h"
#include "godwit/runtime_spec.h"
#include "godwit/util.h"

struct exec_opts {
	const char *process, *pid_file, *cwd, *user, *console_socket;
	int detach, tty;
	int slave;		/* the console's terminal, or -1 */
	json_object *env;	/* -e K=V (held) */
};

static void usage(void)
{
	printf("Usage: godwit-runtime exec [OPTIONS] ID [COMMAND [ARG...]]\n\n"
	       "Run a process in a running container; its output to this command's stdout and\n"
	       "stderr, its exit status this command's (or, with --detach, the pid file's\n"
	       "process's).\n\n"
	       "  -p, --process FILE    the process as a runtime-spec Process object (JSON)\n"
	       "  -d, --detach          return once it has started\n"
	       "      --pid-file FILE   the pid of the process that carries it\n"
	       "      --cwd DIR         working directory (absolute)\n"
	       "  -e, --env K=V         an environment variable (repeatable)\n"
	       "  -u, --user UID[:GID]  the ids to run it as\n"
	       "  -t, --tty             a terminal in the guest for the process\n"
	       "      --console-socket SOCK  where the terminal's master goes (runc's protocol)\n"
	       "      --preserve-fds N  only 0\n"
	       "  -h, --help            this help\n");
}

/* the shim's exec request from --process or the command line */
static int make_request(struct exec_opts *o, int argc, char **argv, json_object **out,
			struct gw_err *err)
{
	json_object *args = json_object_new_object(), *av = json_object_new_array();
	json_object *env = json_object_get(o->env);
	const char *cwd = o->cwd;
	char user[32] = "";
	struct rt_spec s = { 0 };
	int r = 0;
	if (o->process) {
		cleanup_free char *txt = NULL;
		size_t len = 0;
		r = gw_read_file(o->process, RTSPEC_JSON_MAX, &txt, &len, err);
		if (r == 0 && (r = rt_process_parse(txt, len, &s, err)) < 0)
			gw_err_prefix(err, "%s", o->process);
		if (r == 0 && s.terminal)
			o->tty = 1;
		for (size_t i = 0; r == 0 && s.args[i]; i++)
			json_object_array_add(av, json_object_new_string(s.args[i]));
		for (size_t i = 0; r == 0 && s.env[i]; i++)
			json_object_array_add(env, json_object_new_string(s.env[i]));
		if (r == 0 && !cwd)
			cwd = s.cwd;
		snprintf(user, sizeof(user), "%u:%u", s.uid, s.gid);
	} else if (argc < 1) {
		r = gw_err_set(err, EINVAL, "exec: want --process FILE or a COMMAND");
	}
	for (int i = 0; r == 0 && !o->process && i < argc; i++)
		json_object_array_add(av, json_object_new_string(argv[i]));
	json_object_object_add(args, "argv", av);
	json_object_object_add(args, "env", env);
	/* as runc: the process reads what our stdin gives (conmon's pipe for exec -i) */
	json_object_object_add(args, "stdin", json_object_new_boolean(1));
	if (r == 0 && o->tty)
		json_object_object_add(args, "tty", json_object_new_boolean(1));
	if (r == 0 && cwd)
		json_object_object_add(args, "cwd", json_object_new_string(cwd));
	if (r == 0 && (o->user || user[0]))
		json_object_object_add(args, "user", json_object_new_string(o->user ? o->user : user));
	rt_spec_free(&s);
	if (r < 0) {
		json_object_put(args);
		return r;
	}
	*out = args;
	return 0;
}

/* The session: the shim starts the process ("started" written to started_fd, or the error),
 * then its output and exit status. Returns its status, or -1 (err filled). */
static int session(struct oci_rt *rt, const char *id, json_object *req, int tty,
		   int started_fd, struct gw_err *err)
{
	int fd = cli_connect(&rt->cli, id, err);
	struct ctl_reader rd = { 0 };
	int r = fd < 0 ? fd : ctl_call(fd, &rd, "exec", req, NULL, NULL, NULL, 10000, err);
	if (started_fd >= 0) {
		const char *say = r == 0 ? "started" : err->msg;
		gw_write_full(started_fd, say, strlen(say));
		close(started_fd);
	}
	int status = -1;
	struct cli_session_opts so = { .in_fd = 0, .tty = tty, .sigfd = -1 };
	if (r == 0 && (r = cli_session_run(fd, &rd, &so, &status, err)) == 0 && status < 0)
		r = gw_err_set(err, EPIPE, "the container stopped before the process ended");
	ctl_reader_free(&rd);
	if (fd >= 0)
		close(fd);
	return r < 0 ? -1 : status;
}

/* the console's slave as our stdio and our controlling terminal (if we lead our session:
 * its size changes then come as SIGWINCH) */
static void take_console(int slave)
{
	ioctl(slave, TIOCSCTTY, 0);
	for (int i = 0; i < 3; i++)
		dup2(slave, i);
}

static int write_pid(const char *path, pid_t pid, struct gw_err *err)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	return path ? gw_write_file(path, buf, (size_t)n, 0644, err) : 0;
}

static int detached(struct oci_rt *rt, const char *id, const struct exec_opts *o,
		    json_object *req)
{
	struct gw_err err = { 0 };
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return oci_failf(rt, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return oci_failf(rt, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		setsid();
		if (o->slave >= 0)
			take_console(o->slave);
		int status = session(rt, id, req, o->tty, p[1], &err);
		if (status < 0)
			fprintf(stderr, "godwit-runtime: exec: %s\n", err.msg);
		_exit(status < 0 ? 255 : status);
	}
	close(p[1]);
	char said[GW_ERR_MSG_MAX] = "";
	ssize_t n = read(p[0], said, sizeof(said) - 1);
	close(p[0]);
	said[n > 0 ? n : 0] = '\0';
	if (strcmp(said, "started")) {
		waitpid(pid, NULL, 0);
		return oci_failf(rt, "exec: %s", said[0] ? said : "the session ended at once");
	}
	if (write_pid(o->pid_file, pid, &err) < 0)
		return oci_fail(rt, &err);
	return 0;
}

int oci_exec(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "process", required_argument, NULL, 'p' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "cwd", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ "tty", no_argument, NULL, 't' },
		{ "console-socket", required_argument, NULL, 's' },
		{ "preserve-fds", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct exec_opts o = { .env = json_object_new_array(), .slave = -1 };
	int c, rc = -1;
	while (rc < 0 && (c = getopt_long(argc, argv, "+p:de:u:th", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.process = optarg; break;
		case 'd': o.detach = 1; break;
		case 'P': o.pid_file = optarg; break;
		case 'c':
			if (optarg[0] != '/')
				rc = oci_failf(rt, "exec: --cwd must be absolute");
			o.cwd = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				rc = oci_failf(rt, "exec: invalid --env \"%.64s\" (want K=V)", optarg);
			else
				json_object_array_add(o.env, json_object_new_string(optarg));
			break;
		case 'u': o.user = optarg; break;
		case 't': o.tty = 1; break;
		case 's': o.console_socket = optarg; break;
		case 'f':
			if (strcmp(optarg, "0"))
				rc = oci_failf(rt, "exec: --preserve-fds %s: a VM cannot take the "
					       "host's file descriptors (only 0)", optarg);
			break;
		case 'h': usage(); rc = 0; break;
		default: rc = oci_failf(rt, "exec: invalid option (godwit-runtime exec -h)");
		}
	}
	if (rc < 0 && argc - optind < 1)
		rc = oci_failf(rt, "exec: want a container ID");
	struct oci_rec rec;
	struct gw_err err = { 0 };
	json_object *req = NULL;
	const char *id = rc < 0 ? argv[optind] : NULL;
	if (rc < 0 && oci_rec_load(rt, id, &rec, &err) < 0)
		rc = oci_fail(rt, &err);
	if (rc < 0) {
		enum ct_state s = rec.st.state;
		oci_rec_free(&rec);
		if (s != CT_RUNNING)
			rc = oci_failf(rt, "cannot exec in a %s container", oci_status(s));
	}
	if (rc < 0 && make_request(&o, argc - optind - 1, argv + optind + 1, &req, &err) < 0)
		rc = oci_fail(rt, &err);
	if (rc < 0 && o.console_socket && !o.tty)
		rc = oci_failf(rt, "exec: --console-socket given, but no --tty");
	if (rc < 0 && o.console_socket && (o.slave = oci_console_open(o.console_socket, &err)) < 0)
		rc = oci_fail(rt, &err);
	if (rc < 0 && o.detach)
		rc = detached(rt, id, &o, req);
	if (rc < 0 && write_pid(o.pid_file, getpid(), &err) < 0)
		rc = oci_fail(rt, &err);
	if (rc < 0 && o.slave >= 0) {
		setsid(); /* fails if we lead a process group: then no SIGWINCH, the size stays */
		take_console(o.slave);
	}
	if (rc < 0) {
		int status = session(rt, id, req, o.tty, -1, &err);
		rc = status < 0 ? oci_fail(rt, &err) : status;
	}
	json_object_put(req);
	json_object_put(o.env);
	if (o.slave >= 0)
		close(o.slave);
	return rc;
}
