/* gwtest soak / soakcheck (tests/e2e/60-soak.sh, bench/soak.sh): one container entrypoint that
 * holds what a live move must carry - a memory checker, a heartbeat, UNIX sockets (a socketpair
 * and a listener with a connected client; a listener bound by a relative path), a pty session,
 * SysV shared memory, a semaphore and a message queue, a ptraced child, children of two other
 * users, an established TCP connection inside the guest, a tmpfs it mounted, a volume (a disk
 * of its own, `run -v NAME:/vol`, docs/volumes.md), open devices:
 * what CRIU cannot move (issue 13's nine cases; the connections to the outside are
 * tests/e2e/61-network-move.sh's). Each resource is exercised and verified by a process of its
 * own, which writes its verdict to /tmp/soak/NAME (a failure sticks, and is printed once as
 * "FAIL NAME: why"); `gwtest soakcheck` reads the verdicts, checks the real state behind them
 * (processes alive, their uids, the tracer, the segment, the listener) and that every checker
 * still makes progress, and prints "ok NAME ..." or "FAIL NAME: why" for each. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/vfs.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define SOAK_DIR "/tmp/soak"
#define SOAK_SOCK SOAK_DIR "/listener.sock"
#define SOAK_REL_DIR SOAK_DIR "/rel"	/* relsock's directory: it binds "rel.sock" from here */
#define SOAK_MNT SOAK_DIR "/mnt"		/* mount's tmpfs */
#define TMPFS_MAGIC_ 0x01021994
#define SOAK_VOL "/vol"			/* volume: the container's volume (run -v NAME:/vol) */
#define EXT4_MAGIC_ 0xEF53
#define SOAK_SHM_KEY 0x534f414b	/* "SOAK" */
#define SHM_WORDS 4096		/* 32 KiB of pattern behind a seqlock */
#define ROUND_MS 100		/* how often each checker exercises its resource */
#define BEAT_MS 20
#define IO_TIMEOUT_MS 20000	/* a reply may wait out a post-copy move's page faults */
#define STALL_MS 20000		/* a peer making no progress for this long has failed */
#define CHECK_WAIT_MS 10000	/* soakcheck: how long each checker has to show progress */

int soak_main(long mib, long mem_ms);
int soakcheck_main(void);
/* tests/lib/gwtest.c: a sleep that outlasts signals; the word of page p after pass it */
void sleep_ms(long ms);
uint64_t pattern(uint64_t p, uint64_t it);

static const char *const resources[] = {
	"beat", "mem", "sock", "pty", "shm", "ptrace", "user1000", "user1001",
	"tcp", "relsock", "ipc", "mount", "dev", "volume",
};

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One checker's verdict: "ok N PID AUX" or "FAIL N PID AUX why", N its rounds so far, AUX a
 * resource-specific number (a peer's pid, the segment id, a uid). */
struct st {
	const char *name;
	uint64_t n;
	long aux;
	int failed;
	char why[200];
};

static void st_put(const struct st *s)
{
	char path[128], tmp[128], line[320];
	int len, fd;

	snprintf(path, sizeof(path), SOAK_DIR "/%s", s->name);
	snprintf(tmp, sizeof(tmp), SOAK_DIR "/.%s.%d", s->name, (int)getpid());
	len = snprintf(line, sizeof(line), "%s %llu %d %ld%s%s\n", s->failed ? "FAIL" : "ok",
		       (unsigned long long)s->n, (int)getpid(), s->aux, s->failed ? " " : "",
		       s->failed ? s->why : "");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		return;
	}
	close(fd);
	rename(tmp, path);
}

/* A round went well: count it (a failed checker stays failed). */
static void st_ok(struct st *s)
{
	s->n++;
	st_put(s);
}

/* The first failure sticks: printed once to the container's output, then kept in the status
 * file; the checker stops exercising its resource but stays alive. Never returns. */
static void st_fail(struct st *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	s->failed = 1;
	printf("FAIL %s: %s\n", s->name, s->why);
	st_put(s);
	for (;;)
		pause();
}

/* Read one '\n'-ended line (without '\r's) from fd within IO_TIMEOUT_MS (forever if !timed):
 * 0, or -1 with why. */
static int read_line(int fd, char *buf, size_t len, int timed, char *why, size_t wlen)
{
	uint64_t end = ms_now() + IO_TIMEOUT_MS;
	size_t n = 0;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now = ms_now();
		char c;
		ssize_t r;

		if (timed && now >= end) {
			snprintf(why, wlen, "no reply in %d s (got \"%.*s\")", IO_TIMEOUT_MS / 1000,
				 (int)n, buf);
			return -1;
		}
		if (poll(&p, 1, timed ? (int)(end - now) : -1) <= 0)
			continue;
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(why, wlen, "read: %s", r < 0 ? strerror(errno) : "end of file");
			return -1;
		}
		if (c == '\r')
			continue;
		if (c == '\n' || n + 1 >= len) {
			buf[n] = 0;
			return 0;
		}
		buf[n++] = c;
	}
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t r = write(fd, buf, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

/* A child a checker started has ended: its status, as words. */
static const char *ended(pid_t pid, char *buf, size_t len)
{
	int status;

	if (waitpid(pid, &status, WNOHANG) != pid)
		return NULL;
	if (WIFEXITED(status))
		snprintf(buf, len, "pid %d exited %d", (int)pid, WEXITSTATUS(status));
	else
		snprintf(buf, len, "pid %d killed by signal %d", (int)pid, WTERMSIG(status));
	return buf;
}

/* mem: MIB MiB, three words of every page checked against the last pass's pattern and
 * rewritten, a pass every MS ms. */
static void run_mem(long mib, long ms)
{
	struct st s = { .name = "mem", .aux = mib };
	size_t pages = (size_t)mib * 256, words = 4096 / 8;
	uint64_t *buf = malloc(pages * 4096);

	if (!buf)
		st_fail(&s, "cannot allocate %ld MiB", mib);
	for (uint64_t it = 0;; it++) {
		for (size_t p = 0; p < pages; p++) {
			uint64_t *w = buf + p * words, want = pattern(p, it - 1);

			if (it > 0 && (w[0] != want || w[words / 2] != ~want || w[words - 1] != want))
				st_fail(&s, "CORRUPT pass=%llu page=%zu: %016llx %016llx %016llx, "
					    "want %016llx",
					(unsigned long long)it, p, (unsigned long long)w[0],
					(unsigned long long)w[words / 2],
					(unsigned long long)w[words - 1], (unsigned long long)want);
			w[0] = w[words - 1] = pattern(p, it);
			w[words / 2] = ~w[0];
		}
		st_ok(&s);
		sleep_ms(ms);
	}
}

/* The far end of sock's two connections: everything read is written back. */
static void sock_echo(int a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOAK_SOCK };
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char buf[512];

	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(3);
	for (;;) {
		struct pollfd p[2] = { { a, POLLIN, 0 }, { c, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t r = read(p[i].fd, buf, sizeof(buf));

			if (r <= 0 || write_all(p[i].fd, buf, (size_t)r) < 0)
				_exit(4);
		}
	}
}

/* 8 numbered lines "LABEL R.I" written to fd (some sit in the socket buffers) and read back
 * from its echoing peer, in order */
static void exchange(struct st *s, int fd, const char *label, uint64_t r)
{
	char line[128], want[128], why[160];

	for (int i = 0; i < 8; i++) {
		int len = snprintf(line, sizeof(line), "%s %llu.%d\n", label, (unsigned long long)r, i);

		if (write_all(fd, line, (size_t)len) < 0)
			st_fail(s, "write %s: %s", label, strerror(errno));
	}
	for (int i = 0; i < 8; i++) {
		snprintf(want, sizeof(want), "%s %llu.%d", label, (unsigned long long)r, i);
		if (read_line(fd, line, sizeof(line), 1, why, sizeof(why)) < 0)
			st_fail(s, "%s: %s", want, why);
		if (strcmp(line, want))
			st_fail(s, "sent \"%s\", echoed \"%s\"", want, line);
	}
}

/* a new connection to the listener l at sa (len: a relative path's is shorter), a line
 * through it */
static void new_conn(struct st *s, int l, const struct sockaddr_un *sa, socklen_t len,
		     uint64_t r)
{
	char line[128] = "", want[128], why[160] = "";
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	if (c < 0 || connect(c, (const struct sockaddr *)sa, len) < 0)
		st_fail(s, "connect %s: %s", sa->sun_path, strerror(errno));
	n = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	snprintf(want, sizeof(want), "new %llu", (unsigned long long)r);
	if (n < 0 || dprintf(c, "%s\n", want) < 0 ||
	    read_line(n, line, sizeof(line), 1, why, sizeof(why)) < 0 || strcmp(line, want))
		st_fail(s, "a new connection to the listener %s: %s", sa->sun_path,
			n < 0 ? strerror(errno) : why[0] ? why : line);
	close(c);
	close(n);
}

/* sock: a socketpair and a connection accepted on a listening socket, both to an echoing
 * child, carrying 8 numbered messages each per round (so some sit in the socket buffers), and
 * a new connection to the listener per round. */
static void run_sock(void)
{
	struct st s = { .name = "sock" };
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOAK_SOCK };
	int sp[2], l, a;
	char why[160];
	pid_t pid;

	unlink(SOAK_SOCK);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || l < 0 ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 8) < 0)
		st_fail(&s, "set up: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		close(l);
		sock_echo(sp[1]);
	}
	close(sp[1]);
	s.aux = pid;
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (pid < 0 || a < 0)
		st_fail(&s, "echo child: %s", strerror(errno));
	for (uint64_t r = 0;; r++) {
		exchange(&s, sp[0], "pair", r);
		exchange(&s, a, "accepted", r);
		new_conn(&s, l, &sa, sizeof(sa), r);
		if (ended(pid, why, sizeof(why)))
			st_fail(&s, "echo child %s", why);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* The pty's session: its own session leader with the pty as controlling terminal, answering
 * "ping N" with "pong N SESSION_OK ROWS". */
static void pty_session(const char *slave)
{
	struct termios t;
	struct winsize ws;
	char line[128], why[160];
	int fd;

	setsid();
	fd = open(slave, O_RDWR);	/* a session leader's first tty becomes its own */
	if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0 || tcgetattr(fd, &t) < 0)
		_exit(3);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	t.c_oflag &= ~(tcflag_t)OPOST;
	if (tcsetattr(fd, TCSANOW, &t) < 0 || write_all(fd, "ready\n", 6) < 0)
		_exit(4);
	for (;;) {
		if (read_line(fd, line, sizeof(line), 0, why, sizeof(why)) < 0)
			_exit(5);
		int ok = getsid(0) == getpid() && tcgetsid(fd) == getpid() &&
			 tcgetpgrp(fd) == getpgrp();
		if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
			ws.ws_row = 0;
		if (strncmp(line, "ping ", 5) || dprintf(fd, "pong %s %d %u\n", line + 5, ok,
							  ws.ws_row) < 0)
			_exit(6);
	}
}

/* pty: a pty master whose slave is a child session's controlling terminal; per round a
 * window size set on the master and a ping that the session answers through the line
 * discipline. */
static void run_pty(void)
{
	struct st s = { .name = "pty" };
	char line[128], want[128], why[160];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char *slave = m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 ? ptsname(m) : NULL;
	pid_t pid;

	if (!slave)
		st_fail(&s, "posix_openpt: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		close(m);
		pty_session(slave);
	}
	s.aux = pid;
	if (pid < 0 || read_line(m, line, sizeof(line), 1, why, sizeof(why)) < 0 ||
	    strcmp(line, "ready"))
		st_fail(&s, "session did not start: %s", pid < 0 ? strerror(errno) : why);
	for (uint64_t r = 0;; r++) {
		struct winsize ws = { .ws_row = (unsigned short)(r % 200 + 1), .ws_col = 80 };

		if (ioctl(m, TIOCSWINSZ, &ws) < 0 || dprintf(m, "ping %llu\n", (unsigned long long)r) < 0)
			st_fail(&s, "master: %s", strerror(errno));
		snprintf(want, sizeof(want), "pong %llu 1 %u", (unsigned long long)r, ws.ws_row);
		if (read_line(m, line, sizeof(line), 1, why, sizeof(why)) < 0)
			st_fail(&s, "ping %llu: %s", (unsigned long long)r, why);
		if (strcmp(line, want))
			st_fail(&s, "want \"%s\" (session leader with the pty, rows), got \"%s\"",
				want, line);
		if (ended(pid, why, sizeof(why)))
			st_fail(&s, "session %s", why);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

struct shmseg {
	uint64_t seq;	/* odd while the writer rewrites w[] */
	uint64_t count;	/* passes written; w[i] = pattern(i, count - 1) */
	uint64_t w[SHM_WORDS];
};

/* The segment's writer: checks its last pass and writes the next, every 5 ms. */
static void shm_writer(struct shmseg *g)
{
	for (;;) {
		uint64_t c = __atomic_load_n(&g->count, __ATOMIC_SEQ_CST);

		for (size_t i = 0; c > 0 && i < SHM_WORDS; i++)
			if (g->w[i] != pattern(i, c - 1)) {
				printf("FAIL shm: CORRUPT writer pass=%llu word=%zu\n",
				       (unsigned long long)c, i);
				_exit(3);
			}
		__atomic_store_n(&g->seq, g->seq + 1, __ATOMIC_SEQ_CST);
		for (size_t i = 0; i < SHM_WORDS; i++)
			__atomic_store_n(&g->w[i], pattern(i, c), __ATOMIC_RELAXED);
		__atomic_store_n(&g->count, c + 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&g->seq, g->seq + 1, __ATOMIC_SEQ_CST);
		sleep_ms(5);
	}
}

/* shm: a SysV segment (key SOAK_SHM_KEY) a child keeps rewriting; per round the whole pattern
 * checked under the seqlock, the writer's progress and both attachments. */
static void run_shm(void)
{
	struct st s = { .name = "shm" };
	struct shmid_ds ds;
	char why[160];
	int id = shmget(SOAK_SHM_KEY, sizeof(struct shmseg), IPC_CREAT | 0600);
	struct shmseg *g = id >= 0 ? shmat(id, NULL, 0) : (void *)-1;
	uint64_t last = 0, moved_at = ms_now();
	pid_t pid;

	if (g == (void *)-1)
		st_fail(&s, "shmget/shmat: %s", strerror(errno));
	s.aux = id;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		shm_writer(g);
	}
	if (pid < 0)
		st_fail(&s, "fork: %s", strerror(errno));
	for (;;) {
		uint64_t c = 0;
		int tries;

		for (tries = 0; tries < 1000; tries++) {
			uint64_t s1 = __atomic_load_n(&g->seq, __ATOMIC_SEQ_CST), bad = SHM_WORDS;

			if (s1 & 1) {
				sleep_ms(1);
				continue;
			}
			c = __atomic_load_n(&g->count, __ATOMIC_SEQ_CST);
			for (size_t i = 0; c > 0 && i < SHM_WORDS && bad == SHM_WORDS; i++)
				if (__atomic_load_n(&g->w[i], __ATOMIC_RELAXED) != pattern(i, c - 1))
					bad = i;
			if (__atomic_load_n(&g->seq, __ATOMIC_SEQ_CST) != s1)
				continue;	/* the writer came by: read again */
			if (bad != SHM_WORDS)
				st_fail(&s, "CORRUPT pass=%llu word=%llu", (unsigned long long)c,
					(unsigned long long)bad);
			break;
		}
		if (tries == 1000)
			st_fail(&s, "never saw the segment at rest");
		if (c != last)
			last = c, moved_at = ms_now();
		else if (ms_now() - moved_at > STALL_MS)
			st_fail(&s, "the writer made no progress in %d s (pass %llu)",
				STALL_MS / 1000, (unsigned long long)c);
		if (shmctl(id, IPC_STAT, &ds) < 0)
			st_fail(&s, "segment %d: %s", id, strerror(errno));
		if (ds.shm_nattch != 2)
			st_fail(&s, "segment %d: %lu attached (want 2)", id,
				(unsigned long)ds.shm_nattch);
		if (ended(pid, why, sizeof(why)))
			st_fail(&s, "writer %s", why);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* The tracee's counters: it counts and acknowledges the tracer's mail, which the tracer
 * reads and writes with PTRACE_PEEKDATA/POKEDATA while the tracee is stopped. */
static volatile long tr_count, tr_mail, tr_ack;

/* Wait for the tracee's ptrace-stop after PTRACE_INTERRUPT, passing on any signal: 0 or -1. */
static int tr_stopped(pid_t pid, char *why, size_t wlen)
{
	int status;

	for (;;) {
		if (waitpid(pid, &status, __WALL) != pid) {
			snprintf(why, wlen, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (!WIFSTOPPED(status)) {
			snprintf(why, wlen, "tracee %d ended (status 0x%x)", (int)pid, status);
			return -1;
		}
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		ptrace(PTRACE_CONT, pid, 0, (void *)(long)WSTOPSIG(status));
	}
}

/* ptrace: a seized child, interrupted every round, its memory read and written, held
 * stopped for 30 ms and continued. */
static void run_ptrace(void)
{
	struct st s = { .name = "ptrace" };
	long mail = 0, at_poke = 0, last = 0;
	uint64_t moved_at = ms_now();
	char why[160];
	pid_t pid = fork();

	if (pid == 0) {
		for (;;) {
			tr_count = tr_count + 1;
			tr_ack = tr_mail;
			sleep_ms(1);
		}
	}
	s.aux = pid;
	if (pid < 0 || ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)PTRACE_O_EXITKILL) < 0)
		st_fail(&s, "seize %d: %s", (int)pid, strerror(errno));
	for (;;) {
		if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0)
			st_fail(&s, "interrupt: %s", strerror(errno));
		if (tr_stopped(pid, why, sizeof(why)) < 0)
			st_fail(&s, "%s", why);
		errno = 0;
		long c = ptrace(PTRACE_PEEKDATA, pid, (void *)&tr_count, 0);
		long ack = ptrace(PTRACE_PEEKDATA, pid, (void *)&tr_ack, 0);

		if (errno)
			st_fail(&s, "peek: %s", strerror(errno));
		/* two counts past the poke: a whole loop ran after it, the ack included */
		if (c >= at_poke + 2) {
			if (ack != mail)
				st_fail(&s, "poked %ld, the tracee acknowledged %ld", mail, ack);
			mail++;
			if (ptrace(PTRACE_POKEDATA, pid, (void *)&tr_mail, (void *)mail) < 0)
				st_fail(&s, "poke: %s", strerror(errno));
			at_poke = c;
		}
		if (c != last)
			last = c, moved_at = ms_now();
		else if (ms_now() - moved_at > STALL_MS)
			st_fail(&s, "the tracee made no progress in %d s", STALL_MS / 1000);
		sleep_ms(30);
		if (ptrace(PTRACE_CONT, pid, 0, 0) < 0)
			st_fail(&s, "cont: %s", strerror(errno));
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* Everything read from fd is written back (tcp's far end). */
static void echo_loop(int fd)
{
	char buf[512];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write_all(fd, buf, (size_t)r) < 0)
			_exit(4);
	}
}

/* tcp: an established TCP connection inside the guest (127.0.0.1, a port of the kernel's
 * choice, AUX) to an echoing child, 8 numbered lines per round. */
static void run_tcp(void)
{
	struct st s = { .name = "tcp" };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char why[160];
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a;
	pid_t pid;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		st_fail(&s, "listen: %s", strerror(errno));
	s.aux = ntohs(sa.sin_port);
	pid = fork();
	if (pid == 0) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(3);
		echo_loop(c);
	}
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (pid < 0 || a < 0)
		st_fail(&s, "echo child: %s", strerror(errno));
	close(l);
	for (uint64_t r = 0;; r++) {
		exchange(&s, a, "tcp", r);
		if (ended(pid, why, sizeof(why)))
			st_fail(&s, "echo child %s", why);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* relsock: a UNIX listener bound by the relative path "rel.sock" from SOAK_REL_DIR (the
 * checker's working directory), a new connection by that relative path per round. */
static void run_relsock(void)
{
	struct st s = { .name = "relsock" };
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "rel.sock" };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof("rel.sock"));
	int l;

	mkdir(SOAK_REL_DIR, 0755);
	if (chdir(SOAK_REL_DIR) < 0)
		st_fail(&s, "chdir %s: %s", SOAK_REL_DIR, strerror(errno));
	unlink("rel.sock");
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) < 0 || listen(l, 8) < 0)
		st_fail(&s, "bind rel.sock: %s", strerror(errno));
	for (uint64_t r = 0;; r++) {
		new_conn(&s, l, &sa, len, r);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

struct soak_msg {
	long type;
	uint64_t n;
};

/* ipc: a SysV semaphore counting the rounds (mod 1000) and a message queue (id AUX) that
 * always holds the next 4 numbered messages: per round the oldest is taken and checked, a new
 * one sent. */
static void run_ipc(void)
{
	struct st s = { .name = "ipc" };
	int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);

	if (sem < 0 || q < 0 || semctl(sem, 0, SETVAL, 0) < 0)
		st_fail(&s, "semget/msgget: %s", strerror(errno));
	s.aux = q;
	for (uint64_t i = 0; i < 4; i++) {
		struct soak_msg m = { 1, i };

		if (msgsnd(q, &m, sizeof(m.n), 0) < 0)
			st_fail(&s, "msgsnd: %s", strerror(errno));
	}
	for (uint64_t r = 0;; r++) {
		struct soak_msg m = { 0, 0 };
		struct sembuf up = { 0, 1, 0 };
		int v = semctl(sem, 0, GETVAL);

		if (v != (int)(r % 1000))
			st_fail(&s, "semaphore %d is %d, want %d", sem, v, (int)(r % 1000));
		if (msgrcv(q, &m, sizeof(m.n), 0, IPC_NOWAIT) != (ssize_t)sizeof(m.n) || m.n != r)
			st_fail(&s, "queue %d: took %llu (%s), want %llu", q, (unsigned long long)m.n,
				strerror(errno), (unsigned long long)r);
		m = (struct soak_msg){ 1, r + 4 };
		if (msgsnd(q, &m, sizeof(m.n), 0) < 0 ||
		    ((r + 1) % 1000 ? semop(sem, &up, 1) : semctl(sem, 0, SETVAL, 0)) < 0)
			st_fail(&s, "msgsnd/semop: %s", strerror(errno));
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* mount: a tmpfs the checker mounted at SOAK_MNT; volume: the ext4 volume the agent mounted
 * at SOAK_VOL (a disk of its own, moved by its own mirror). Per round the file the last round
 * wrote is read back and the next written (to the volume's disk: fsync). */
static void run_mount(const char *name, const char *dir, long magic, const char *type)
{
	struct st s = { .name = name };
	char path[64], buf[64], want[64];

	snprintf(path, sizeof(path), "%s/round", dir);
	if (magic == TMPFS_MAGIC_) {
		mkdir(dir, 0755);
		if (mount("soak", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") < 0)
			st_fail(&s, "mount tmpfs on %s: %s", dir, strerror(errno));
	}
	for (uint64_t r = 0;; r++) {
		struct statfs sf;
		FILE *f;

		if (statfs(dir, &sf) < 0 || sf.f_type != magic)
			st_fail(&s, "%s is not a %s", dir, type);
		if (r > 0) {
			snprintf(want, sizeof(want), "round %llu\n", (unsigned long long)(r - 1));
			f = fopen(path, "re");
			if (!f || !fgets(buf, sizeof(buf), f) || strcmp(buf, want))
				st_fail(&s, "%s: want \"%.20s\"", path, want);
			fclose(f);
		}
		f = fopen(path, "we");
		if (!f || fprintf(f, "round %llu\n", (unsigned long long)r) < 0 || fflush(f) != 0 ||
		    fsync(fileno(f)) < 0 || fclose(f) != 0)
			st_fail(&s, "write %s: %s", path, strerror(errno));
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* dev: /dev/zero, /dev/null and /dev/urandom, opened once; per round each fd still is that
 * device and does what it does. */
static void run_dev(void)
{
	static const char *const names[] = { "/dev/zero", "/dev/null", "/dev/urandom" };
	struct st s = { .name = "dev" };
	struct stat st0[3], st;
	int fd[3];
	unsigned char buf[64], last[16] = { 0 };

	for (int i = 0; i < 3; i++) {
		fd[i] = open(names[i], (i == 1 ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		if (fd[i] < 0 || fstat(fd[i], &st0[i]) < 0)
			st_fail(&s, "open %s: %s", names[i], strerror(errno));
	}
	for (;;) {
		for (int i = 0; i < 3; i++)
			if (fstat(fd[i], &st) < 0 || st.st_rdev != st0[i].st_rdev)
				st_fail(&s, "fd %d is no longer %s", fd[i], names[i]);
		memset(buf, 0xaa, sizeof(buf));
		if (read(fd[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			st_fail(&s, "read /dev/zero: %s", strerror(errno));
		for (size_t i = 0; i < sizeof(buf); i++)
			if (buf[i])
				st_fail(&s, "/dev/zero gave a byte 0x%02x", buf[i]);
		if (write(fd[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			st_fail(&s, "write /dev/null: %s", strerror(errno));
		if (read(fd[2], buf, 16) != 16 || !memcmp(buf, last, 16))
			st_fail(&s, "/dev/urandom gave nothing new");
		memcpy(last, buf, 16);
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

/* userUID: a child that dropped to uid/gid UID and keeps checking its credentials, and that
 * it may not signal OTHER (a process of another user; 0: none). */
static void run_user(uid_t uid, pid_t other)
{
	char name[32];
	struct st s = { .name = name, .aux = (long)uid };

	snprintf(name, sizeof(name), "user%u", (unsigned)uid);
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		st_fail(&s, "setuid %u: %s", (unsigned)uid, strerror(errno));
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a change of credentials cleared it */
	for (;;) {
		if (getuid() != uid || geteuid() != uid || getgid() != uid || getegid() != uid)
			st_fail(&s, "credentials changed: uid %u euid %u gid %u egid %u",
				(unsigned)getuid(), (unsigned)geteuid(), (unsigned)getgid(),
				(unsigned)getegid());
		int r = other > 0 ? kill(other, 0) : -1;

		if (other > 0 && (r == 0 || errno != EPERM))
			st_fail(&s, "kill(%d, 0) as uid %u: %s (want EPERM)", (int)other,
				(unsigned)uid, r == 0 ? "allowed" : strerror(errno));
		st_ok(&s);
		sleep_ms(ROUND_MS);
	}
}

int soak_main(long mib, long mem_ms)
{
	struct { const char *name; pid_t pid; } kids[sizeof(resources) / sizeof(resources[0])];
	struct st beat = { .name = "beat" };
	int nkids = 0;
	char why[160];

	umask(022);
	mkdir(SOAK_DIR, 01777);
	chmod(SOAK_DIR, 01777);	/* the users' checkers write their verdicts here too */
	fflush(stdout);
#define KID(nm, call)                                            \
	do {                                                     \
		pid_t p_ = fork();                               \
		if (p_ == 0) {                                   \
			prctl(PR_SET_PDEATHSIG, SIGKILL);        \
			call;                                    \
			_exit(1);                                \
		}                                                \
		kids[nkids].name = nm, kids[nkids++].pid = p_;   \
	} while (0)
	KID("mem", run_mem(mib, mem_ms));
	KID("sock", run_sock());
	KID("pty", run_pty());
	KID("shm", run_shm());
	KID("ptrace", run_ptrace());
	KID("user1001", run_user(1001, 0));
	KID("user1000", run_user(1000, kids[nkids - 1].pid));
	KID("tcp", run_tcp());
	KID("relsock", run_relsock());
	KID("ipc", run_ipc());
	KID("mount", run_mount("mount", SOAK_MNT, TMPFS_MAGIC_, "tmpfs"));
	KID("volume", run_mount("volume", SOAK_VOL, EXT4_MAGIC_, "ext4 volume"));
	KID("dev", run_dev());
#undef KID
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid < 0)
			st_fail(&beat, "fork %s: %s", kids[i].name, strerror(errno));
	printf("soak: started, %ld MiB checked every %ld ms\n", mib, mem_ms);
	for (uint64_t n = 0;; n++) {
		printf("beat %llu\n", (unsigned long long)n);
		st_ok(&beat);
		for (int i = 0; i < nkids; i++)
			if (kids[i].pid > 0 && ended(kids[i].pid, why, sizeof(why))) {
				struct st dead = { .name = kids[i].name, .n = 0, .failed = 1 };

				snprintf(dead.why, sizeof(dead.why), "checker %s", why);
				printf("FAIL %s: %s\n", dead.name, dead.why);
				st_put(&dead);
				kids[i].pid = 0;
			}
		sleep_ms(BEAT_MS);
	}
}

/* One status file: 0 and its fields, or -1 with why. */
static int st_read(const char *name, char *state, uint64_t *n, long *pid, long *aux, char *rest,
		   size_t rlen)
{
	char path[128], line[320], st8[8];
	unsigned long long nn;
	int used = 0;
	FILE *f;

	snprintf(path, sizeof(path), SOAK_DIR "/%s", name);
	f = fopen(path, "re");
	if (!f) {
		snprintf(rest, rlen, "no status (%s)", strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "%7s %llu %ld %ld %n", st8, &nn, pid, aux, &used) < 4) {
		fclose(f);
		snprintf(rest, rlen, "unreadable status");
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	snprintf(state, 8, "%s", st8);
	snprintf(rest, rlen, "%s", line + used);
	*n = nn;
	return 0;
}

/* A line of /proc/PID/status, or "" */
static void proc_field(long pid, const char *key, char *out, size_t len)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			char *v = line + kl + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, len, "%s", v);
			break;
		}
	if (f)
		fclose(f);
}

/* /proc/net/unix lists a listener bound to path (Flags 00010000: listening) */
static int unix_listening(const char *path)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	int found = 0;

	/* Num RefCount Protocol Flags Type St Inode Path */
	while (f && fgets(line, sizeof(line), f)) {
		unsigned flags = 0;
		char p[256] = "";

		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %255s", &flags, p) == 2 &&
		    !strcmp(p, path) && (flags & 0x10000))
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

/* /proc/net/tcp has an established (st 01) connection from 127.0.0.1:port */
static int tcp_established(long port)
{
	FILE *f = fopen("/proc/net/tcp", "re");
	char line[512];
	int found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned addr, lport, st;

		if (sscanf(line, " %*d: %x:%x %*x:%*x %x", &addr, &lport, &st) == 3 &&
		    addr == 0x0100007f && (long)lport == port && st == 1)
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

/* /proc/self/mountinfo has a file system of type fstype mounted at dir */
static int mounted(const char *dir, const char *fstype)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024], mp[512], type[64];
	int found = 0;

	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [FIELDS...] - TYPE SOURCE SUPEROPTIONS */
	while (f && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");

		if (dash && sscanf(line, "%*s %*s %*s %*s %511s", mp) == 1 &&
		    sscanf(dash + 3, "%63s", type) == 1 && !strcmp(mp, dir) && !strcmp(type, fstype))
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

/* how many of pid's fds are open on path */
static int fds_on(long pid, const char *path)
{
	char dir[64], target[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);

		if (len > 0) {
			target[len] = 0;
			n += !strcmp(target, path);
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* The real state behind a resource's verdict: "" when it holds, else why. */
static void check_real(const char *name, long pid, long aux, char *why, size_t wlen)
{
	char v[128], want[128];

	why[0] = 0;
	if (kill((pid_t)pid, 0) < 0) {
		snprintf(why, wlen, "checker pid %ld is gone", pid);
	} else if (!strncmp(name, "user", 4)) {
		snprintf(want, sizeof(want), "%ld\t%ld\t%ld\t%ld", aux, aux, aux, aux);
		proc_field(pid, "Uid", v, sizeof(v));
		if (strcmp(v, want))
			snprintf(why, wlen, "pid %ld has Uid \"%.60s\", want \"%.60s\"", pid, v, want);
	} else if (!strcmp(name, "ptrace")) {
		proc_field(aux, "TracerPid", v, sizeof(v));
		if (atol(v) != pid)
			snprintf(why, wlen, "tracee %ld has TracerPid \"%s\", want %ld", aux, v, pid);
	} else if (!strcmp(name, "pty")) {
		char path[64], line[512];
		int sid = 0, tty = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/stat", aux);
		f = fopen(path, "re");
		if (f && fgets(line, sizeof(line), f)) {
			char *p = strrchr(line, ')');	/* after the command name */

			if (p)
				sscanf(p + 2, "%*c %*d %*d %d %d", &sid, &tty);
		}
		if (f)
			fclose(f);
		if (sid != aux || tty == 0)
			snprintf(why, wlen, "session %ld: sid %d, tty_nr %d (want its own session "
					    "with a controlling tty)", aux, sid, tty);
	} else if (!strcmp(name, "shm")) {
		struct shmid_ds ds;
		int id = shmget(SOAK_SHM_KEY, 0, 0);

		if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0)
			snprintf(why, wlen, "key 0x%x: %s", SOAK_SHM_KEY, strerror(errno));
		else if (id != aux || ds.shm_nattch != 2)
			snprintf(why, wlen, "key 0x%x: segment %d with %lu attached (want %ld with 2)",
				 SOAK_SHM_KEY, id, (unsigned long)ds.shm_nattch, aux);
	} else if (!strcmp(name, "sock")) {
		if (!unix_listening(SOAK_SOCK))
			snprintf(why, wlen, "no listener on %s in /proc/net/unix", SOAK_SOCK);
		else if (kill((pid_t)aux, 0) < 0)
			snprintf(why, wlen, "echo child %ld is gone", aux);
	} else if (!strcmp(name, "relsock")) {
		if (!unix_listening("rel.sock"))
			snprintf(why, wlen, "no listener on rel.sock in /proc/net/unix");
	} else if (!strcmp(name, "tcp")) {
		if (!tcp_established(aux))
			snprintf(why, wlen, "no established connection to 127.0.0.1:%ld", aux);
	} else if (!strcmp(name, "ipc")) {
		struct msqid_ds q;

		if (msgctl((int)aux, IPC_STAT, &q) < 0)
			snprintf(why, wlen, "queue %ld: %s", aux, strerror(errno));
		else if (q.msg_qnum < 3 || q.msg_qnum > 4)
			snprintf(why, wlen, "queue %ld holds %lu messages (want 3 or 4)", aux,
				 (unsigned long)q.msg_qnum);
	} else if (!strcmp(name, "mount")) {
		if (!mounted(SOAK_MNT, "tmpfs"))
			snprintf(why, wlen, "no tmpfs on %s in /proc/self/mountinfo", SOAK_MNT);
	} else if (!strcmp(name, "volume")) {
		if (!mounted(SOAK_VOL, "ext4"))
			snprintf(why, wlen, "no ext4 volume on %s in /proc/self/mountinfo", SOAK_VOL);
	} else if (!strcmp(name, "dev")) {
		int n = fds_on(pid, "/dev/zero") + fds_on(pid, "/dev/null") +
			fds_on(pid, "/dev/urandom");

		if (n < 3)
			snprintf(why, wlen, "pid %ld holds %d of /dev/zero, /dev/null, /dev/urandom",
				 pid, n);
	}
}

int soakcheck_main(void)
{
	enum { N = sizeof(resources) / sizeof(resources[0]) };
	uint64_t n0[N], n[N];
	long pid[N], aux[N];
	char state[N][8], rest[N][240];
	int bad = 0, done;
	uint64_t end = ms_now() + CHECK_WAIT_MS;

	for (int i = 0; i < N; i++)
		if (st_read(resources[i], state[i], &n0[i], &pid[i], &aux[i], rest[i],
			    sizeof(rest[i])) < 0)
			snprintf(state[i], sizeof(state[i]), "none");
	/* every checker must finish rounds after this command started: still at work */
	do {
		done = 1;
		sleep_ms(20);
		for (int i = 0; i < N; i++) {
			if (strcmp(state[i], "ok"))
				continue;
			if (st_read(resources[i], state[i], &n[i], &pid[i], &aux[i], rest[i],
				    sizeof(rest[i])) < 0)
				snprintf(state[i], sizeof(state[i]), "none");
			else if (strcmp(state[i], "ok") == 0 && n[i] < n0[i] + 2)
				done = 0;
		}
	} while (!done && ms_now() < end);
	for (int i = 0; i < N; i++) {
		char why[240];

		if (!strcmp(state[i], "none")) {
			printf("FAIL %s: %s\n", resources[i], rest[i]);
		} else if (strcmp(state[i], "ok")) {
			printf("FAIL %s: %s (after %llu rounds)\n", resources[i], rest[i],
			       (unsigned long long)n0[i]);
		} else if (n[i] < n0[i] + 2) {
			printf("FAIL %s: stuck at round %llu for %d s\n", resources[i],
			       (unsigned long long)n[i], CHECK_WAIT_MS / 1000);
		} else {
			check_real(resources[i], pid[i], aux[i], why, sizeof(why));
			if (why[0])
				printf("FAIL %s: %s\n", resources[i], why);
			else
				printf("ok %s rounds %llu..%llu pid %ld\n", resources[i],
				       (unsigned long long)n0[i], (unsigned long long)n[i], pid[i]);
			bad += why[0] != 0;
			continue;
		}
		bad++;
	}
	return bad ? 1 : 0;
}
