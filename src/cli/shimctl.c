/* What several commands share: where the guest kit is, starting a container's shim and
 * waiting until it is ready, and talking to a running shim (connect, attach, stream output). */
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/close_range.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/util.h"

static int file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_kit_paths(const struct gw_cli *cli, char **kernel, char **initrd, struct gw_err *err)
{
	*kernel = *initrd = NULL;
	if (cli->kernel && !(*kernel = realpath(cli->kernel, NULL)))
		return gw_err_sys(err, errno, "kernel %s", cli->kernel);
	if (cli->initrd && !(*initrd = realpath(cli->initrd, NULL))) {
		free(*kernel);
		*kernel = NULL;
		return gw_err_sys(err, errno, "initrd %s", cli->initrd);
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	const char *kitenv = getenv("GODWIT_KIT");
	char *dirs[3] = { 0 };
	int nd = 0;
	if (kitenv && *kitenv)
		dirs[nd++] = strdup(kitenv);
	if (n > 0)
		dirs[nd++] = gw_strdup_printf("%s/guest", dirname(exe));
	dirs[nd++] = strdup("/usr/local/lib/godwit");
	for (int i = 0; i < nd && (!*kernel || !*initrd); i++) {
		if (!dirs[i])
			continue;
		cleanup_free char *k = gw_strdup_printf("%s/vmlinuz", dirs[i]);
		cleanup_free char *r = gw_strdup_printf("%s/initrd.img", dirs[i]);
		if (k && r && file_exists(k) && file_exists(r)) {
			if (!*kernel)
				*kernel = realpath(k, NULL);
			if (!*initrd)
				*initrd = realpath(r, NULL);
		}
	}
	for (int i = 0; i < nd; i++)
		free(dirs[i]);
	if (*kernel && *initrd)
		return 0;
	free(*kernel);
	free(*initrd);
	*kernel = *initrd = NULL;
	return gw_err_set(err, ENOENT, "guest kit not found (build it with `make guest`, set "
			  "GODWIT_KIT, or pass --kernel and --initrd)");
}

int cli_spawn_shim(const struct gw_cli *cli, const char *name, char *const extra[],
		   struct gw_err *err)
{
	return cli_spawn_shim_ex(cli, name, extra, NULL, err);
}

int cli_spawn_shim_ex(const struct gw_cli *cli, const char *name, char *const extra[],
		      const int *stdio, struct gw_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return gw_err_sys(err, errno, "pipe");
	cleanup_free char *shimlog = ct_path(cli->root, name, "shim.log");
	pid_t pid = fork();
	if (pid < 0)
		return gw_err_sys(err, errno, "fork");
	if (pid == 0) {
		/* the shim outlives the CLI: own session, no terminal, its own log */
		setsid();
		close(p[0]);
		/* the runtime's stdio, kept above the fds set up below until they are in place */
		int io[3] = { -1, -1, -1 };
		for (int i = 0; stdio && i < 3; i++)
			io[i] = fcntl(stdio[i], F_DUPFD, 10);
		int devnull = open("/dev/null", O_RDWR);
		int lf = open(shimlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(devnull, 0);
		dup2(lf >= 0 ? lf : devnull, 1);
		dup2(lf >= 0 ? lf : devnull, 2);
		/* nothing the CLI inherited (a lock, a pipe) may live on in the daemon */
		int wfd = 3; /* without CLOEXEC: passed to the shim */
		if (p[1] == wfd)
			fcntl(wfd, F_SETFD, 0);
		else
			dup2(p[1], wfd);
		int keep = 4;
		for (int i = 0; stdio && i < 3; i++)
			dup2(io[i] >= 0 ? io[i] : 0, keep++); /* 0: /dev/null by now */
		close_range((unsigned)keep, ~0U, 0);
		char fdarg[16];
		snprintf(fdarg, sizeof(fdarg), "%d", wfd);
		char *argv[32];
		int n = 0;
		argv[n++] = (char *)"godwit-shim";
		argv[n++] = (char *)"--root";
		argv[n++] = (char *)cli->root;
		argv[n++] = (char *)"--accel";
		argv[n++] = (char *)cli->accel;
		if (cli->kernel) {
			argv[n++] = (char *)"--kernel";
			argv[n++] = (char *)cli->kernel;
		}
		if (cli->initrd) {
			argv[n++] = (char *)"--initrd";
			argv[n++] = (char *)cli->initrd;
		}
		argv[n++] = (char *)"__shim";
		argv[n++] = (char *)"--ready-fd";
		argv[n++] = fdarg;
		if (stdio) {
			argv[n++] = (char *)"--stdio-fd";
			argv[n++] = (char *)"4";
		}
		for (int i = 0; extra && extra[i] && n < 30; i++)
			argv[n++] = extra[i];
		argv[n++] = (char *)name;
		argv[n] = NULL;
		/* a daemon: when the CLI exits nothing should reach the shim's group */
		if (fork() > 0)
			_exit(0);
		/* godwit-shim beside this binary; or this binary, which has the shim too */
		char self[PATH_MAX], shim[PATH_MAX + 16];
		ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[sl > 0 ? sl : 0] = '\0';
		snprintf(shim, sizeof(shim), "%s/godwit-shim", dirname(self));
		execv(shim, argv);
		argv[0] = (char *)"godwit";
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	waitpid(pid, NULL, 0);
	char buf[GW_ERR_MSG_MAX + 16];
	size_t have = 0;
	ssize_t r;
	while (have < sizeof(buf) - 1 && (r = read(p[0], buf + have, sizeof(buf) - 1 - have)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		have += (size_t)r;
	}
	close(p[0]);
	buf[have] = '\0';
	if (!strcmp(buf, "ok"))
		return 0;
	if (!strncmp(buf, "error: ", 7))
		return gw_err_set(err, EIO, "%s", buf + 7);
	return gw_err_set(err, EIO, "the shim died while starting (see %s)", shimlog);
}

int cli_connect(const struct gw_cli *cli, const char *name, struct gw_err *err)
{
	struct ct_status st;
	int r = ct_status_load(cli->root, name, &st, err);
	if (r < 0)
		return r;
	if (st.state == CT_INCOMING)
		return gw_err_set(err, EAGAIN, "container %s is incoming: it is not here yet", name);
	cleanup_free char *sock = ct_path(cli->root, name, "shim.sock");
	r = ctl_connect(sock, err);
	if (r < 0)
		return gw_err_set(err, ENOTCONN, "container %s is not running (%s)", name,
				  ct_state_name(st.state));
	return r;
}

static int write_b64(int fd, json_object *data)
{
	json_object *v;
	if (!json_object_object_get_ex(data, "data", &v))
		return 0;
	unsigned char *buf;
	size_t n;
	int r = gw_b64_decode(json_object_get_string(v), &buf, &n);
	if (r < 0)
		return r;
	gw_write_full(fd, buf, n);
	free(buf);
	return 0;
}

int cli_signals_forwarded(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		/* a shell starts background commands with SIGINT ignored: taken back */
		signal(sigs[i], SIG_DFL);
		sigaddset(&set, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int cli_stream_events(int fd, struct ctl_reader *rd, int *status, struct gw_err *err)
{
	struct cli_session_opts o = { .in_fd = -1, .sigfd = -1 };
	return cli_session_run(fd, rd, &o, status, err);
}

int cli_print_event(json_object *m, int *status, int out_fd, int err_fd)
{
	json_object *ev, *data, *v;
	if (!json_object_object_get_ex(m, "event", &ev) || !json_object_is_type(ev, json_type_string) ||
	    !json_object_object_get_ex(m, "data", &data))
		return 0;
	const char *name = json_object_get_string(ev);
	if (!strcmp(name, "output")) {
		int isErr = json_object_object_get_ex(data, "stream", &v) && gw_json_streq(v, "stderr");
		write_b64(isErr ? err_fd : out_fd, data);
	} else if (!strcmp(name, "exit")) {
		*status = json_object_object_get_ex(data, "status", &v) ? json_object_get_int(v) : 255;
		return 1;
	} else if (!strcmp(name, "error")) {
		if (json_object_object_get_ex(data, "message", &v))
			fprintf(stderr, "godwit: %s\n", json_object_get_string(v));
	}
	return 0;
}

int cli_guest_query(const struct gw_cli *cli, const char *name, const char *what,
		    json_object **out, struct gw_err *err)
{
	*out = NULL;
	int fd = cli_connect(cli, name, err);
	if (fd < 0)
		return fd;
	struct ctl_reader rd = { 0 };
	json_object *args = json_object_new_object();
	json_object_object_add(args, "what", json_object_new_string(what));
	int r = ctl_call(fd, &rd, "guest-query", args, NULL, NULL, NULL, 10000, err);
	json_object_put(args);
	while (r == 0 && !*out) {
		json_object *m, *ev, *data, *e;
		if ((r = ctl_recv(&rd, fd, 15000, &m, err)) < 0)
			break;
		if (json_object_object_get_ex(m, "event", &ev) && gw_json_streq(ev, "guest-answer") &&
		    json_object_object_get_ex(m, "data", &data)) {
			if (json_object_object_get_ex(data, "error", &e))
				r = gw_err_set(err, EIO, "%s", json_object_get_string(e));
			else
				*out = json_object_get(data);
		}
		json_object_put(m);
	}
	ctl_reader_free(&rd);
	close(fd);
	return r == -EPIPE ? gw_err_set(err, EPIPE, "container %s stopped", name) : r;
}

int64_t cli_json_int(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

int cli_wait_closed(int fd, int timeout_ms)
{
	char buf[4096];
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int64_t left = deadline - gw_now_mono_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)(left / 1000000) + 1) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
	}
}
