/* godwit-agent: PID 1 of a godwit guest (docs/agent-protocol.md section 5). Boots the guest,
 * then runs one poll() loop over the agent port, a signalfd for SIGCHLD and the container
 * processes' pipes: frames in become processes, signals and stdin; pipes and exits become
 * frames out. Reaps every zombie; powers the VM off when the container's main process is done. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include <json-c/linkhash.h>

#include "agent.h"
#include "godwit/util.h"

#define PIPE_CHUNK 32768
#define ACK_WAIT_NS (5LL * 1000000000)
#define DEFAULT_GRACE_MS 10000
/* Output that follows output sent less than this ago waits out the rest of it and goes in one
 * frame: a process writing a line a millisecond cost the guest a wake-up, a frame and a virtio
 * kick per line (under TCG each switch between processes also empties QEMU's jump cache) */
#define AGENT_OUT_BATCH_NS 5000000LL

/* The agent links only err.c, frame.c and link.c of the host code, not util.c. */
static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void agent_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, "godwit-agent: ", 14) < 0 || write(2, buf, (size_t)n) < 0)
		return;
}

void agent_dbg(const struct agent *a, const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	va_list ap;

	if (!a->debug)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_BOOTTIME, &ts);
	agent_log("[%ld.%03ld] %s", (long)ts.tv_sec, ts.tv_nsec / 1000000, buf);
}

static void send_json(struct agent *a, uint16_t type, uint16_t chan, const char *key, int64_t v,
		      const char *msg)
{
	struct json_object *o = json_object_new_object();
	struct gw_err err = { 0 };

	if (!o)
		return;
	if (msg)
		json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, key, json_object_new_int64(v));
	if (gw_link_send_json(&a->link, type, chan, o, &err) < 0)
		agent_log("send %s: %s", gw_frame_type_name(type), err.msg);
	json_object_put(o);
}

static struct agent_proc *proc_by_chan(struct agent *a, uint16_t chan)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (a->procs[i].used && a->procs[i].chan == chan)
			return &a->procs[i];
	return NULL;
}

static void proc_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void begin_exit(struct agent *a)
{
	a->main_done = true;
	a->poweroff_at_ns = now_ns() + ACK_WAIT_NS;
}

static void handle_start(struct agent *a, const struct gw_frame *f)
{
	uint16_t chan = f->hdr.chan;
	bool is_main = f->hdr.type == GW_FRAME_START;
	struct agent_proc *p = NULL;
	struct gw_err err = { 0 };
	int status;

	if (is_main != (chan == 0) || (is_main && a->main_started) || proc_by_chan(a, chan)) {
		send_json(a, GW_FRAME_ERROR, chan, "status", 126,
			  is_main ? "START must be on chan 0, once" : "EXEC chan in use or 0");
		return;
	}
	for (int i = 0; i < AGENT_MAX_PROCS && !p; i++)
		if (!a->procs[i].used)
			p = &a->procs[i];
	if (is_main)
		a->main_started = true;
	if (!p) {
		send_json(a, GW_FRAME_ERROR, chan, "status", 126, "too many processes");
		send_json(a, GW_FRAME_EXIT, chan, "status", 126, NULL);
		return;
	}
	if (proc_start(a, p, chan, f, is_main, &status, &err) < 0) {
		agent_log("chan %u: %s", chan, err.msg);
		send_json(a, GW_FRAME_ERROR, chan, "status", status, err.msg);
		if (!p->used) {	/* never forked: nothing will be reaped */
			send_json(a, GW_FRAME_EXIT, chan, "status", status, NULL);
			if (is_main)
				begin_exit(a);
		}
		return;
	}
	send_json(a, GW_FRAME_STARTED, chan, "pid", p->pid, NULL);
}

static void handle_stdin(struct agent *a, const struct gw_frame *f)
{
	struct agent_proc *p = proc_by_chan(a, f->hdr.chan);

	if (p)
		input_add(a, p, f->payload, f->hdr.len);
}

static int frame_int(const struct gw_frame *f, const char *key, int64_t def, int64_t *out)
{
	struct json_object *o, *v;

	*out = def;
	if (gw_frame_json(f, &o, NULL) < 0)
		return -EPROTO;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		*out = json_object_get_int64(v);
	json_object_put(o);
	return 0;
}

static void handle_frame(struct agent *a, const struct gw_frame *f)
{
	struct gw_err err = { 0 };
	struct agent_proc *p;
	uint32_t last, next;
	int64_t v;

	agent_dbg(a, "recv %s chan %u seq %u len %u", gw_frame_type_name(f->hdr.type), f->hdr.chan,
		  f->hdr.seq, f->hdr.len);
	switch (f->hdr.type) {
	case GW_FRAME_RESYNC:
		if (gw_link_parse_sync(f, &last, &next, &err) < 0 ||
		    gw_link_peer_reset(&a->link, last, GW_FRAME_HELLO, &err) < 0)
			agent_log("RESYNC: %s", err.msg);
		break;
	case GW_FRAME_START:
	case GW_FRAME_EXEC:
		handle_start(a, f);
		break;
	case GW_FRAME_STDIN:
		handle_stdin(a, f);
		break;
	case GW_FRAME_SIGNAL:
		p = proc_by_chan(a, f->hdr.chan);
		if (frame_int(f, "signal", 0, &v) < 0 || v < 1 || v > 64)
			agent_log("SIGNAL: bad payload");
		else if (p && !p->reaped && kill(p->pid, (int)v) < 0)
			agent_log("kill %d: %s", p->pid, strerror(errno));
		break;
	case GW_FRAME_WINSIZE: {
		int64_t rows, cols;

		p = proc_by_chan(a, f->hdr.chan);
		if (frame_int(f, "rows", 0, &rows) < 0 || frame_int(f, "cols", 0, &cols) < 0) {
			agent_log("WINSIZE: bad payload");
			break;
		}
		struct winsize ws = { .ws_row = (unsigned short)proc_clamp_size(rows),
				      .ws_col = (unsigned short)proc_clamp_size(cols) };

		/* the kernel sends SIGWINCH to the terminal's foreground process group */
		if (p && p->tty_fd >= 0 && ioctl(p->tty_fd, TIOCSWINSZ, &ws) < 0)
			agent_log("chan %u: window size: %s", p->chan, strerror(errno));
		break;
	}
	case GW_FRAME_QUERY:
		query_handle(a, f);
		break;
	case GW_FRAME_PING:
		if (gw_link_send(&a->link, GW_FRAME_PONG, f->hdr.chan, f->payload, f->hdr.len,
				 &err) < 0)
			agent_log("PONG: %s", err.msg);
		break;
	case GW_FRAME_SHUTDOWN:
		frame_int(f, "grace_ms", DEFAULT_GRACE_MS, &v);
		if (v < 0 || v > 3600000)
			v = DEFAULT_GRACE_MS;
		a->shutting_down = true;
		p = proc_by_chan(a, 0);
		if (p && !p->reaped) {
			kill(-p->pid, SIGTERM);
			kill(p->pid, SIGTERM);
			a->kill_at_ns = now_ns() + v * 1000000;
		} else if (!a->poweroff_at_ns) {
			begin_exit(a);
		}
		break;
	default:
		agent_log("unexpected %s frame from host", gw_frame_type_name(f->hdr.type));
	}
}

static void reap(struct agent *a)
{
	struct signalfd_siginfo si;
	int st;
	pid_t pid;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < AGENT_MAX_PROCS; i++) {
			struct agent_proc *p = &a->procs[i];

			if (!p->used || p->pid != pid || p->reaped)
				continue;
			p->reaped = true;
			p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			input_drop(a, p);
			proc_close(&p->in_fd);
			agent_dbg(a, "chan %u: pid %d exited, status %d", p->chan, pid, p->status);
		}
	}
}

/* Relay one read of a pipe; closes it on EOF (or, once the process is gone, when empty). */
static void relay(struct agent *a, struct agent_proc *p, int *fd, uint16_t type)
{
	char buf[PIPE_CHUNK];
	struct gw_err err = { 0 };
	ssize_t n;

	if (*fd < 0 || !gw_link_can_send(&a->link, sizeof(buf)))
		return;
	n = read(*fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (p->reaped)	/* a background child may hold it open: do not wait for it */
			proc_close(fd);
		return;
	}
	if (n <= 0) {
		proc_close(fd);
		return;
	}
	if (gw_link_send(&a->link, type, p->chan, buf, (size_t)n, &err) < 0)
		agent_log("chan %u: %s", p->chan, err.msg);
	a->out_quiet_ns = now_ns() + AGENT_OUT_BATCH_NS;
}

/* Finish processes that exited: drain their pipes, then send EXIT. */
static void finish_procs(struct agent *a)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++) {
		struct agent_proc *p = &a->procs[i];

		if (!p->used || !p->reaped)
			continue;
		while (p->out_fd >= 0 && gw_link_can_send(&a->link, PIPE_CHUNK))
			relay(a, p, &p->out_fd, GW_FRAME_STDOUT);
		while (p->err_fd >= 0 && gw_link_can_send(&a->link, PIPE_CHUNK))
			relay(a, p, &p->err_fd, GW_FRAME_STDERR);
		if (p->out_fd >= 0 || p->err_fd >= 0 || !gw_link_can_send(&a->link, 64))
			continue;
		send_json(a, GW_FRAME_EXIT, p->chan, "status", p->status, NULL);
		if (p->chan == 0)
			begin_exit(a);
		proc_close(&p->tty_fd);
		memset(p, 0, sizeof(*p));
		p->in_fd = p->out_fd = p->err_fd = p->tty_fd = -1;
	}
}

static void port_events(struct agent *a, short revents)
{
	struct gw_err err = { 0 };
	struct gw_frame f;
	ssize_t n;

	if (revents & POLLIN) {
		n = gw_link_read(&a->link, a->port_fd, &err);
		if (n == -EPROTO) {
			agent_log("%s: resynchronising", err.msg);
			gw_frame_reader_free(&a->link.rd);
			a->link.rd.hunt = true;
		} else if (n == 0) {
			revents |= POLLHUP;
		} else if (n < 0 && n != -EAGAIN) {
			agent_log("%s", err.msg);
		}
		while (gw_link_next(&a->link, &f) > 0) {
			handle_frame(a, &f);
			gw_frame_free(&f);
		}
	}
	if (revents & (POLLHUP | POLLERR)) {
		agent_dbg(a, "host disconnected");
		a->host_gone = true;
	}
	if ((revents & POLLOUT) && gw_link_flush(&a->link, a->port_fd, &err) < 0)
		agent_log("%s", err.msg);
}

/* While no host is connected the port polls as POLLHUP: check it without spinning. */
static void check_host(struct agent *a)
{
	struct pollfd pfd = { .fd = a->port_fd, .events = POLLIN };
	struct gw_err err = { 0 };

	if (poll(&pfd, 1, 0) < 0 || (pfd.revents & POLLHUP))
		return;
	a->host_gone = false;
	gw_frame_reader_free(&a->link.rd);
	a->link.rd.hunt = true;
	agent_dbg(a, "host connected");
	if (gw_link_send_sync(&a->link, GW_FRAME_HELLO, &err) < 0)
		agent_log("HELLO: %s", err.msg);
}

static void run(struct agent *a)
{
	struct pollfd pfds[2 + 3 * AGENT_MAX_PROCS];
	struct agent_proc *owner[2 + 3 * AGENT_MAX_PROCS];
	int64_t now, timeout_ns;

	for (;;) {
		now = now_ns();
		if (a->kill_at_ns && now >= a->kill_at_ns) {
			struct agent_proc *p = proc_by_chan(a, 0);

			if (p && !p->reaped) {
				kill(-p->pid, SIGKILL);
				kill(p->pid, SIGKILL);
			}
			a->kill_at_ns = 0;
		}
		if (a->host_gone)
			check_host(a);
		finish_procs(a);
		if (a->poweroff_at_ns && ((!a->link.unacked && !gw_link_want_write(&a->link)) ||
					  now >= a->poweroff_at_ns))
			return;
		int n = 0;
		bool gather = a->out_quiet_ns > now;

		/* input waiting for its processes past AGENT_INPUT_MAX: read no more (input.c) */
		pfds[n] = (struct pollfd){ .fd = a->host_gone ? -1 : a->port_fd,
					   .events = a->in_pending < AGENT_INPUT_MAX ? POLLIN : 0 };
		if (gw_link_want_write(&a->link))
			pfds[n].events |= POLLOUT;
		owner[n++] = NULL;
		pfds[n] = (struct pollfd){ .fd = a->sig_fd, .events = POLLIN };
		owner[n++] = NULL;
		for (int i = 0; i < AGENT_MAX_PROCS; i++) {
			struct agent_proc *p = &a->procs[i];

			if (p->used && p->in_len) {
				pfds[n] = (struct pollfd){ .fd = input_fd(p), .events = POLLOUT };
				owner[n++] = p;
			}
			if (!p->used || gather || !gw_link_can_send(&a->link, PIPE_CHUNK))
				continue;
			if (p->out_fd >= 0) {
				pfds[n] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
				owner[n++] = p;
			}
			if (p->err_fd >= 0) {
				pfds[n] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
				owner[n++] = p;
			}
		}
		timeout_ns = -1;
		if (a->host_gone)
			timeout_ns = 50000000;
		if (a->kill_at_ns && (timeout_ns < 0 || a->kill_at_ns - now < timeout_ns))
			timeout_ns = a->kill_at_ns - now;
		if (a->poweroff_at_ns && (timeout_ns < 0 || a->poweroff_at_ns - now < timeout_ns))
			timeout_ns = a->poweroff_at_ns - now;
		if (gather && (timeout_ns < 0 || a->out_quiet_ns - now < timeout_ns))
			timeout_ns = a->out_quiet_ns - now;
		struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
				       .tv_nsec = timeout_ns % 1000000000 };

		if (ppoll(pfds, (nfds_t)n, timeout_ns < 0 ? NULL : &ts, NULL) < 0)
			continue;
		if (pfds[1].revents)
			reap(a);
		for (int i = 2; i < n; i++) {
			struct agent_proc *p = owner[i];

			if (!pfds[i].revents)
				continue;
			if (pfds[i].events == POLLOUT)
				input_flush(a, p);
			else if (pfds[i].fd == p->out_fd)
				relay(a, p, &p->out_fd, GW_FRAME_STDOUT);
			else if (pfds[i].fd == p->err_fd)
				relay(a, p, &p->err_fd, GW_FRAME_STDERR);
		}
		if (pfds[0].revents)
			port_events(a, pfds[0].revents);
		if (!a->host_gone && gw_link_want_write(&a->link)) {
			struct gw_err err = { 0 };

			if (gw_link_flush(&a->link, a->port_fd, &err) < 0)
				agent_log("%s", err.msg);
		}
	}
}

int main(void)
{
	struct agent a = { .port_fd = -1, .sig_fd = -1, .root = "/" };
	struct gw_err err = { 0 };
	sigset_t mask;

	/* json-c seeds its default string hash from the kernel's random pool, and this early in
	 * boot (no RDRAND in the guest CPU model) that read waits about 1 s for the CRNG. The
	 * agent's few small tables do not need a keyed hash. */
	json_global_set_string_hash(JSON_C_STR_HASH_PERLLIKE);
	boot_mount_basics();
	a.debug = boot_debug_requested();
	agent_dbg(&a, "starting");
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		a.procs[i].in_fd = a.procs[i].out_fd = a.procs[i].err_fd = a.procs[i].tty_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	a.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a.sig_fd < 0)
		agent_log("signalfd: %s", strerror(errno));
	boot_load_modules(&a);
	a.root = boot_mount_root(&a);
	boot_loopback_up(&a);
	a.port_fd = boot_open_port(&a, &err);
	if (a.port_fd < 0) {
		agent_log("%s", err.msg);
		boot_power_off(&a);
	}
	gw_link_init(&a.link);
	if (gw_link_send_sync(&a.link, GW_FRAME_HELLO, &err) < 0)
		agent_log("HELLO: %s", err.msg);
	agent_dbg(&a, "HELLO queued");
	run(&a);
	agent_dbg(&a, "done");
	boot_power_off(&a);
	return 0;
}
