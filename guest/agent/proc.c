/* Starting container processes for START/EXEC frames (docs/agent-protocol.md sections 2, 5):
 * parse and bound the request, resolve the user from the container's /etc/passwd and /etc/group
 * (fgetpwent/fgetgrent: a static binary has no NSS), fork, chroot, drop privileges, execvp with
 * the container's PATH, and report exec failures through a close-on-exec pipe. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "godwit/util.h"

#define MAX_ARGS 4096
#define MAX_GROUPS 64
#define MAX_RLIMITS 16
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct spec {
	char **argv;
	char **env;
	const char *cwd;
	const char *user;
	const char *hostname;
	struct json_object *net;	/* the main process's network, or NULL */
	struct json_object *mounts;	/* the main process's volumes, or NULL */
	bool want_stdin;
	bool tty;		/* a pseudo-terminal for stdin, stdout and stderr */
	struct winsize ws;	/* its first size (0 = the kernel's default) */
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	struct { int res; struct rlimit lim; } rl[MAX_RLIMITS];	/* START's "rlimits" */
	int nrl;
};

static const struct { const char *name; int res; } RLIMITS[] = {
	{ "RLIMIT_CPU", RLIMIT_CPU }, { "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_DATA", RLIMIT_DATA }, { "RLIMIT_STACK", RLIMIT_STACK },
	{ "RLIMIT_CORE", RLIMIT_CORE }, { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_NPROC", RLIMIT_NPROC }, { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS }, { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

/* "rlimits": [{"type": "RLIMIT_NOFILE", "soft": N, "hard": N}, ...], set in the process before
 * it drops to its user (the guest's kernel is the container's own: raising is allowed) */
static int parse_rlimits(struct json_object *arr, struct spec *s, struct gw_err *err)
{
	size_t n = json_object_array_length(arr);
	if (n > MAX_RLIMITS)
		return gw_err_set(err, E2BIG, "rlimits: more than %d", MAX_RLIMITS);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *t, *so, *ha;
		if (!json_object_object_get_ex(e, "type", &t) ||
		    !json_object_object_get_ex(e, "soft", &so) ||
		    !json_object_object_get_ex(e, "hard", &ha) ||
		    !json_object_is_type(so, json_type_int) || !json_object_is_type(ha, json_type_int))
			return gw_err_set(err, EINVAL, "rlimits[%zu]: want type, soft and hard", i);
		size_t k = 0;
		while (k < sizeof(RLIMITS) / sizeof(RLIMITS[0]) &&
		       strcmp(json_object_get_string(t), RLIMITS[k].name))
			k++;
		uint64_t soft = json_object_get_uint64(so), hard = json_object_get_uint64(ha);
		if (k == sizeof(RLIMITS) / sizeof(RLIMITS[0]) || soft > hard)
			return gw_err_set(err, EINVAL, "rlimits[%zu]: unknown type or soft > hard", i);
		s->rl[s->nrl].res = RLIMITS[k].res;
		s->rl[s->nrl].lim.rlim_cur = soft;
		s->rl[s->nrl++].lim.rlim_max = hard;
	}
	return 0;
}

/* NULL-terminated array of the strings in a JSON array (pointers into obj); NULL on error. */
static char **str_array(struct json_object *arr, bool add_path, struct gw_err *err,
			const char *what)
{
	size_t n = arr ? json_object_array_length(arr) : 0, k = 0;
	bool has_path = false;
	char **v;

	if (n > MAX_ARGS) {
		gw_err_set(err, E2BIG, "%s: more than %d entries", what, MAX_ARGS);
		return NULL;
	}
	v = calloc(n + 2, sizeof(*v));
	if (!v) {
		gw_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(s, json_type_string)) {
			free(v);
			gw_err_set(err, EINVAL, "%s[%zu] is not a string", what, i);
			return NULL;
		}
		v[k] = (char *)json_object_get_string(s);
		if (strncmp(v[k], "PATH=", 5) == 0)
			has_path = true;
		k++;
	}
	if (add_path && !has_path)
		v[k++] = DEFAULT_PATH;
	return v;
}

static int parse_spec(struct json_object *o, struct spec *s, struct gw_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, "argv", &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return gw_err_set(err, EINVAL, "\"argv\" missing or empty");
	s->argv = str_array(v, false, err, "argv");
	if (!s->argv)
		return -EINVAL;
	if (!json_object_object_get_ex(o, "env", &v) || !json_object_is_type(v, json_type_array))
		v = NULL;
	s->env = str_array(v, true, err, "env");
	if (!s->env)
		return -EINVAL;
	s->cwd = "/";
	s->user = "0";
	if (json_object_object_get_ex(o, "cwd", &v) && json_object_is_type(v, json_type_string))
		s->cwd = json_object_get_string(v);
	if (json_object_object_get_ex(o, "user", &v) && json_object_is_type(v, json_type_string) &&
	    *json_object_get_string(v))
		s->user = json_object_get_string(v);
	if (json_object_object_get_ex(o, "hostname", &v) && json_object_is_type(v, json_type_string))
		s->hostname = json_object_get_string(v);
	if (json_object_object_get_ex(o, "net", &v) && json_object_is_type(v, json_type_object))
		s->net = v;
	if (json_object_object_get_ex(o, "mounts", &v) && json_object_is_type(v, json_type_array))
		s->mounts = v;
	if (json_object_object_get_ex(o, "stdin", &v))
		s->want_stdin = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "tty", &v))
		s->tty = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "rows", &v) && json_object_is_type(v, json_type_int))
		s->ws.ws_row = (unsigned short)proc_clamp_size(json_object_get_int64(v));
	if (json_object_object_get_ex(o, "cols", &v) && json_object_is_type(v, json_type_int))
		s->ws.ws_col = (unsigned short)proc_clamp_size(json_object_get_int64(v));
	if (json_object_object_get_ex(o, "rlimits", &v) && json_object_is_type(v, json_type_array))
		return parse_rlimits(v, s, err);
	return 0;
}

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && !errno && *out < 0xfffffffful;
}

/* Resolve "user[:group]" against root/etc/passwd and root/etc/group, like docker: a numeric
 * uid need not exist (gid 0 then); a name must. */
static int resolve_user(const char *root, struct spec *s, struct gw_err *err)
{
	char path[256], user[256], *group;
	const char *name = NULL;
	struct passwd *pw;
	struct group *gr;
	unsigned long id;

	snprintf(user, sizeof(user), "%s", s->user);
	group = strchr(user, ':');
	if (group)
		*group++ = 0;
	s->gid = 0;
	snprintf(path, sizeof(path), "%s/etc/passwd", strcmp(root, "/") ? root : "");
	cleanup_fclose FILE *pf = fopen(path, "re");
	bool numeric = parse_id(user, &id);
	bool found = false;

	if (numeric)
		s->uid = (uid_t)id;
	while (pf && (pw = fgetpwent(pf))) {
		if (numeric ? pw->pw_uid == s->uid : strcmp(pw->pw_name, user) == 0) {
			s->uid = pw->pw_uid;
			s->gid = pw->pw_gid;
			snprintf(path, sizeof(path), "%s", pw->pw_name);
			found = true;
			break;
		}
	}
	if (!found && !numeric)
		return gw_err_set(err, ENOENT, "user \"%s\" not found in /etc/passwd", user);
	if (found)
		name = path;	/* the user name, for supplementary groups */

	char gpath[256];

	snprintf(gpath, sizeof(gpath), "%s/etc/group", strcmp(root, "/") ? root : "");
	cleanup_fclose FILE *gf = fopen(gpath, "re");
	bool gnumeric = group && parse_id(group, &id);
	bool gfound = false;

	if (gnumeric)
		s->gid = (gid_t)id;
	s->ngroups = 0;
	while (gf && (gr = fgetgrent(gf))) {
		if (group && !gnumeric && strcmp(gr->gr_name, group) == 0) {
			s->gid = gr->gr_gid;
			gfound = true;
		}
		for (char **m = gr->gr_mem; name && !group && m && *m; m++)
			if (strcmp(*m, name) == 0 && s->ngroups < MAX_GROUPS)
				s->groups[s->ngroups++] = gr->gr_gid;
	}
	if (group && !gnumeric && !gfound)
		return gw_err_set(err, ENOENT, "group \"%s\" not found in /etc/group", group);
	if (s->ngroups < MAX_GROUPS)
		s->groups[s->ngroups++] = s->gid;
	return 0;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* In the child: report why we cannot run and exit with status. Never returns. */
static void child_fail(int fd, int status, const char *fmt, const char *arg)
{
	char msg[512];
	int len = snprintf(msg + 1, sizeof(msg) - 1, fmt, arg, strerror(errno));

	msg[0] = (char)status;
	if (len > (int)sizeof(msg) - 2)
		len = (int)sizeof(msg) - 2;
	if (write(fd, msg, (size_t)len + 1) < 0) {
		/* nothing more we can do: the status says it */
	}
	_exit(status);
}

int proc_clamp_size(int64_t v)
{
	return v < 0 ? 0 : v > PROC_TTY_SIZE_MAX ? PROC_TTY_SIZE_MAX : (int)v;
}

/* A new pseudo-terminal in the container's devpts instance (boot.c mounts one with
 * newinstance under every root): its master, and its slave opened through the master
 * (TIOCGPTPEER, so no path in the container's /dev is trusted). */
static int open_tty(const struct agent *a, const struct winsize *ws, int *slave,
		    struct gw_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/dev/pts/ptmx", strcmp(a->root, "/") ? a->root : "");
	int m = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	int unlock = 0;

	if (m < 0)
		return gw_err_sys(err, errno, "open %s", path);
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0 ||
	    ((ws->ws_row || ws->ws_col) && ioctl(m, TIOCSWINSZ, ws) < 0) ||
	    (*slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		int e = errno;

		close(m);
		return gw_err_sys(err, e, "pseudo-terminal");
	}
	return m;
}

static void child(const struct agent *a, struct spec *s, int pin, int pout, int perr, int efd)
{
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	/* with a tty, pin = pout = perr = its slave: the session's controlling terminal */
	if (s->tty && ioctl(pin, TIOCSCTTY, 0) < 0)
		child_fail(efd, 126, "controlling terminal for %s: %s", s->argv[0]);
	if (pin < 0)
		pin = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (dup2(pin, 0) < 0 || dup2(pout, 1) < 0 || dup2(perr, 2) < 0)
		child_fail(efd, 126, "stdio for %s: %s", s->argv[0]);
	if (strcmp(a->root, "/") && (chroot(a->root) < 0 || chdir("/") < 0))
		child_fail(efd, 126, "chroot %s: %s", a->root);
	if (chdir(s->cwd) < 0)
		child_fail(efd, 126, "cwd %s: %s", s->cwd);
	for (int i = 0; i < s->nrl; i++)
		if (setrlimit((__rlimit_resource_t)s->rl[i].res, &s->rl[i].lim) < 0)
			child_fail(efd, 126, "rlimit of %s: %s", s->argv[0]);
	if (setgroups((size_t)s->ngroups, s->groups) < 0 || setgid(s->gid) < 0 ||
	    setuid(s->uid) < 0)
		child_fail(efd, 126, "user %s: %s", s->user);
	environ = s->env;
	execvp(s->argv[0], s->argv);
	if (errno == ENOENT || errno == ENOTDIR)
		child_fail(efd, 127, "%s: executable file not found in $PATH (%s)", s->argv[0]);
	child_fail(efd, 126, "exec %s: %s", s->argv[0]);
}

int proc_start(struct agent *a, struct agent_proc *p, uint16_t chan, const struct gw_frame *f,
	       bool is_main, int *status, struct gw_err *err)
{
	struct json_object *o = NULL;
	struct spec s = { 0 };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int master = -1, slave = -1;
	char msg[512];
	ssize_t n;
	pid_t pid;
	int ret;

	*status = 126;
	ret = gw_frame_json(f, &o, err);
	if (ret == 0)
		ret = parse_spec(o, &s, err);
	if (ret == 0)
		ret = resolve_user(a->root, &s, err);
	if (ret < 0)
		goto out;
	if (is_main && s.hostname && sethostname(s.hostname, strlen(s.hostname)) < 0)
		agent_log("sethostname %s: %s", s.hostname, strerror(errno));
	if (is_main && s.net && (ret = net_setup(a, s.net, s.hostname, err)) < 0)
		goto out;
	if (is_main && s.mounts && (ret = mounts_setup(a, s.mounts, err)) < 0)
		goto out;
	if (s.tty && (master = open_tty(a, &s.ws, &slave, err)) < 0) {
		ret = master;
		goto out;
	}
	if ((!s.tty && ((s.want_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
			pipe2(errp, O_CLOEXEC) < 0)) || pipe2(ep, O_CLOEXEC) < 0) {
		ret = gw_err_sys(err, errno, "pipe");
		goto out;
	}
	/* the relay reads a tty through its own descriptor, closed at EOF; tty_fd stays for
	 * stdin and window sizes until the process is finished */
	if (s.tty && (out[0] = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0) {
		ret = gw_err_sys(err, errno, "dup");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = gw_err_sys(err, errno, "fork");
		goto out;
	}
	if (pid == 0) {
		if (s.tty)
			child(a, &s, slave, slave, slave, ep[1]);
		child(a, &s, in[0], out[1], errp[1], ep[1]);
	}
	close(ep[1]);
	ep[1] = -1;
	/* EOF = exec succeeded; otherwise one status byte and a message. */
	do
		n = read(ep[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	p->used = true;
	p->chan = chan;
	p->pid = pid;
	p->reaped = false;
	p->in_fd = steal_fd(in[1]);
	p->out_fd = steal_fd(out[0]);
	p->err_fd = steal_fd(errp[0]);
	p->tty_fd = steal_fd(master);
	set_nonblock(p->out_fd);	/* a tty's: tty_fd's too (one open file) */
	if (p->err_fd >= 0)
		set_nonblock(p->err_fd);
	if (p->in_fd >= 0)
		set_nonblock(p->in_fd);	/* input.c waits with poll() */
	if (n > 0) {
		msg[n] = 0;
		*status = (unsigned char)msg[0];
		ret = gw_err_set(err, ENOEXEC, "%s", msg + 1);
	}
	agent_dbg(a, "chan %u: pid %d %s", chan, pid, s.argv[0]);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (master >= 0)
		close(master);
	if (slave >= 0)
		close(slave);
	free(s.argv);
	free(s.env);
	json_object_put(o);
	return ret;
}
