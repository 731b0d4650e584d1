/* An attached session with input (run -i/-t, exec -i/-t, attach): the container's output to
 * ours, our stdin to its stdin (docs/api.md `stdin`, one chunk in flight, sent again when the
 * shim says "Busy"), and with a tty our terminal in raw mode and its size (SIGWINCH) to the
 * container's (`resize`). The detach keys end the session and leave the container running. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/util.h"

#define IN_CHUNK 16384
#define BUSY_RETRY_MS 20

int cli_detach_keys_parse(const char *spec, char *out, size_t *n)
{
	*n = 0;
	if (!spec || !*spec)
		return 0; /* none: no detaching */
	cleanup_free char *dup = strdup(spec);
	char *save = NULL;
	for (char *k = dup ? strtok_r(dup, ",", &save) : NULL; k; k = strtok_r(NULL, ",", &save)) {
		if (*n >= CLI_DETACH_MAX)
			return -1;
		if (!strncmp(k, "ctrl-", 5) && strlen(k) == 6) {
			char c = k[5];
			if (c >= 'a' && c <= 'z')
				out[(*n)++] = (char)(c - 'a' + 1);
			else if (c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' || c == '_')
				out[(*n)++] = (char)(c - '@');
			else
				return -1;
		} else if (strlen(k) == 1) {
			out[(*n)++] = k[0];
		} else {
			return -1;
		}
	}
	return dup ? 0 : -1;
}

static void send_cmd(int fd, const char *cmd, json_object *args)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	json_object_object_add(req, "arguments", args);
	ctl_send(fd, req, NULL);
	json_object_put(req);
}

static json_object *input_args(const char *data, size_t len)
{
	char b64[IN_CHUNK / 3 * 4 + 8];
	int bl = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
	b64[bl > 0 ? bl : 0] = 0;
	json_object *a = json_object_new_object();
	json_object_object_add(a, "data", json_object_new_string(b64));
	return a;
}

/* resize's arguments from our terminal's size, or NULL */
static json_object *size_args(int tty_fd)
{
	struct winsize ws;
	if (ioctl(tty_fd, TIOCGWINSZ, &ws) < 0)
		return NULL;
	json_object *a = json_object_new_object();
	json_object_object_add(a, "rows", json_object_new_int(ws.ws_row));
	json_object_object_add(a, "cols", json_object_new_int(ws.ws_col));
	return a;
}

struct session {
	int fd, in_fd, size_fd;
	int in_open;		/* still reading our stdin */
	int in_flight;		/* a stdin chunk awaits its answer */
	int64_t resend_at;	/* the shim said Busy: send it again then (0 = not) */
	char chunk[IN_CHUNK];	/* the chunk in flight */
	size_t chunk_len;
	unsigned char kinds[256]; /* what each request in flight was: 'i'nput or other */
	uint8_t head, tail;
	size_t matched;		/* bytes of the detach sequence seen so far */
};

/* Send a request and note what it was, so its answer is matched to it (answers come in the
 * order of the requests). Signals and resizes are dropped when 250 wait already (a shim that
 * does not answer); the one stdin chunk in flight always has its place. */
static void request(struct session *s, unsigned char kind, const char *cmd, json_object *args)
{
	if (!args || (kind != 'i' && (uint8_t)(s->tail - s->head) >= 250)) {
		json_object_put(args);
		return;
	}
	s->kinds[s->tail++] = kind;
	send_cmd(s->fd, cmd, args);
}

/* an answer: to the oldest request in flight */
static void on_reply(struct session *s, json_object *m)
{
	if (s->head == s->tail)
		return;
	unsigned char kind = s->kinds[s->head++];
	json_object *e, *v;
	if (kind != 'i')
		return;
	if (!json_object_object_get_ex(m, "error", &e)) {
		s->in_flight = 0;
		s->chunk_len = 0;
		return;
	}
	if (json_object_object_get_ex(e, "class", &v) && gw_json_streq(v, "Busy")) {
		s->resend_at = gw_now_mono_ns() + BUSY_RETRY_MS * 1000000LL;
		return;
	}
	if (json_object_object_get_ex(e, "desc", &v))
		fprintf(stderr, "godwit: stdin: %s\r\n", json_object_get_string(v));
	s->in_flight = 0;
	s->in_open = 0;
}

static void flush_chunk(struct session *s)
{
	s->in_flight = 1;
	s->resend_at = 0;
	request(s, 'i', "stdin", input_args(s->chunk, s->chunk_len));
}

/* read our stdin into a chunk; 1 when the detach keys were typed */
static int read_input(struct session *s, const char *det, size_t ndet)
{
	char buf[IN_CHUNK / 2];
	ssize_t n = read(s->in_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	s->chunk_len = 0;
	if (n <= 0) {
		s->in_open = 0;
		flush_chunk(s); /* empty: EOF */
		return 0;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (ndet && buf[i] == det[s->matched]) {
			if (++s->matched == ndet)
				return 1;
			continue;
		}
		/* a partial sequence that did not go on was typed for the container */
		memcpy(s->chunk + s->chunk_len, det, s->matched);
		s->chunk_len += s->matched;
		s->matched = 0;
		if (ndet && buf[i] == det[0]) {
			s->matched = 1;
			continue;
		}
		s->chunk[s->chunk_len++] = buf[i];
	}
	if (s->chunk_len)
		flush_chunk(s);
	return 0;
}

int cli_session_run(int fd, struct ctl_reader *rd, const struct cli_session_opts *o, int *status,
		    struct gw_err *err)
{
	struct session s = { .fd = fd, .in_fd = o->in_fd, .in_open = o->in_fd >= 0,
			     .size_fd = -1 };
	struct termios saved;
	int raw = 0, winch = -1, ret = 0;
	*status = -1;
	if (o->tty) {
		s.size_fd = isatty(o->in_fd) ? o->in_fd : isatty(1) ? 1 : -1;
		if (o->in_fd >= 0 && isatty(o->in_fd) && tcgetattr(o->in_fd, &saved) == 0) {
			struct termios t = saved;
			cfmakeraw(&t);
			raw = tcsetattr(o->in_fd, TCSANOW, &t) == 0;
		}
	}
	if (s.size_fd >= 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGWINCH);
		sigprocmask(SIG_BLOCK, &set, NULL);
		winch = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
		request(&s, 'r', "resize", size_args(s.size_fd));
	}
	for (;;) {
		/* what the reader holds already (a reply's read may bring events along) first */
		json_object *m;
		int n, done = 0;
		while (!done && (n = ctl_reader_next(rd, &m, err)) > 0) {
			json_object *v;
			if (json_object_object_get_ex(m, "event", &v))
				done = cli_print_event(m, status, o->out_fd > 0 ? o->out_fd : 1,
							 o->err_fd > 0 ? o->err_fd : 2);
			else
				on_reply(&s, m);
			json_object_put(m);
		}
		if (n < 0 || done) {
			ret = n < 0 ? n : 0;
			break;
		}
		struct pollfd p[4] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = s.in_open && !s.in_flight ? s.in_fd : -1, .events = POLLIN },
			{ .fd = o->sigfd, .events = POLLIN },
			{ .fd = winch, .events = POLLIN },
		};
		int wait = -1;
		if (s.resend_at) {
			int64_t left = s.resend_at - gw_now_mono_ns();
			wait = left > 0 ? (int)(left / 1000000) + 1 : 0;
		}
		if (poll(p, 4, wait) < 0 && errno != EINTR) {
			ret = gw_err_sys(err, errno, "poll");
			break;
		}
		if (s.resend_at && gw_now_mono_ns() >= s.resend_at)
			flush_chunk(&s);
		if (p[0].revents) {
			n = ctl_reader_fill(rd, fd, err);
			if (n == 0)
				break; /* the shim closed: *status stays -1 */
			if (n < 0 && n != -EAGAIN) {
				ret = n;
				break;
			}
		}
		/* as docker: the detach keys only on a terminal (piped data may hold them) */
		if (p[1].revents && read_input(&s, o->detach, o->tty ? o->ndetach : 0) == 1) {
			ret = CLI_DETACHED;
			break;
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;
			while (read(o->sigfd, &si, sizeof(si)) == sizeof(si)) {
				json_object *a = json_object_new_object();
				json_object_object_add(a, "signal", json_object_new_int((int)si.ssi_signo));
				request(&s, 's', "signal", a);
			}
		}
		if (p[3].revents) {
			struct signalfd_siginfo si;
			while (read(winch, &si, sizeof(si)) == sizeof(si))
				;
			request(&s, 'r', "resize", size_args(s.size_fd));
		}
	}
	if (raw)
		tcsetattr(o->in_fd, TCSANOW, &saved);
	if (winch >= 0)
		close(winch);
	return ret;
}
