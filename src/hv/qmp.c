/* QMP client (include/godwit/qmp.h): one unix-socket connection to one QEMU monitor. Input is
 * line-buffered and bounded by QMP_LINE_MAX; every line is parsed and classified by
 * qmp_parse_line() before anything trusts it. Commands carry an "id" so that a late reply to a
 * command that timed out is recognised and dropped; events go to a bounded queue that drops
 * the oldest (and counts) if QEMU floods. */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "godwit/qmp.h"
#include "godwit/util.h"

#define QMP_EVENT_QUEUE_MAX 1024
#define QMP_DEFAULT_TIMEOUT_MS 30000
#define QMP_JSON_DEPTH 64
#define QMP_BUF_INIT 65536
#define QMP_PUMP_READS_MAX 64	/* bound one qmp_pump() so a flooding QEMU cannot starve us */

struct qmp {
	int fd;
	char *buf;			/* bytes from QEMU not yet consumed (a line in progress) */
	size_t len, cap;
	json_object *events[QMP_EVENT_QUEUE_MAX]; /* ring, oldest at ev_head */
	size_t ev_head, ev_count;
	unsigned long ev_dropped;
	unsigned long long next_id;
	json_object *greeting;
	int broken;			/* negative errno once the stream cannot be trusted */
	struct gw_err broken_err;
	void (*wait)(void *arg, int fd, int ms); /* qmp_set_wait */
	void *wait_arg;
};

/* What a read loop is waiting for: the greeting, or the reply carrying id. */
struct qmp_want {
	int greeting;
	const char *id;
	json_object *reply;	/* filled when found */
};

static int64_t deadline_after(int timeout_ms)
{
	return gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - gw_now_mono_ns();
	if (left <= 0)
		return 0;
	return (int)((left + 999999) / 1000000);
}

/* Remember a fatal stream error: every later call fails the same way. */
static int qmp_break(struct qmp *q, int rc, struct gw_err *err)
{
	q->broken = rc;
	if (err)
		q->broken_err = *err;
	else
		gw_err_set(&q->broken_err, -rc, "qmp: connection unusable");
	return rc;
}

static int qmp_check_broken(const struct qmp *q, struct gw_err *err)
{
	if (!q->broken)
		return 0;
	return gw_err_set(err, -q->broken, "%s", q->broken_err.msg);
}

int qmp_parse_line(const char *line, size_t len, json_object **msg, struct gw_err *err)
{
	*msg = NULL;
	if (len > QMP_LINE_MAX)
		return gw_err_set(err, EMSGSIZE, "qmp: line of %zu bytes exceeds the limit of %d",
				  len, QMP_LINE_MAX);
	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	if (len == 0)
		return gw_err_set(err, EBADMSG, "qmp: empty line");
	if (memchr(line, '\0', len))
		return gw_err_set(err, EBADMSG, "qmp: NUL byte in line");

	struct json_tokener *tok = json_tokener_new_ex(QMP_JSON_DEPTH);
	if (!tok)
		return gw_err_set(err, ENOMEM, "qmp: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		if (jerr == json_tokener_continue)
			return gw_err_set(err, EBADMSG, "qmp: truncated JSON");
		return gw_err_set(err, EBADMSG, "qmp: malformed JSON: %s",
				  json_tokener_error_desc(jerr));
	}
	for (size_t i = end; i < len; i++) {
		if (!isspace((unsigned char)line[i])) {
			json_object_put(o);
			return gw_err_set(err, EBADMSG, "qmp: trailing bytes after JSON message");
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return gw_err_set(err, EBADMSG, "qmp: message is not a JSON object");
	}

	int kind = 0;
	json_object *v, *cls, *desc;
	if (json_object_object_get_ex(o, "QMP", &v)) {
		if (json_object_is_type(v, json_type_object))
			kind = QMP_MSG_GREETING;
	} else if (json_object_object_get_ex(o, "return", &v)) {
		kind = QMP_MSG_RETURN;
	} else if (json_object_object_get_ex(o, "error", &v)) {
		if (json_object_is_type(v, json_type_object) &&
		    json_object_object_get_ex(v, "class", &cls) &&
		    json_object_is_type(cls, json_type_string) &&
		    json_object_object_get_ex(v, "desc", &desc) &&
		    json_object_is_type(desc, json_type_string))
			kind = QMP_MSG_ERROR;
	} else if (json_object_object_get_ex(o, "event", &v)) {
		json_object *data;
		if (json_object_is_type(v, json_type_string) &&
		    (!json_object_object_get_ex(o, "data", &data) ||
		     json_object_is_type(data, json_type_object)))
			kind = QMP_MSG_EVENT;
	}
	if (!kind) {
		json_object_put(o);
		return gw_err_set(err, EBADMSG, "qmp: unrecognised or ill-typed message");
	}
	*msg = o;
	return kind;
}

static void qmp_queue_event(struct qmp *q, json_object *ev)
{
	if (q->ev_count == QMP_EVENT_QUEUE_MAX) {
		json_object_put(q->events[q->ev_head]);
		q->ev_head = (q->ev_head + 1) % QMP_EVENT_QUEUE_MAX;
		q->ev_count--;
		q->ev_dropped++;
	}
	q->events[(q->ev_head + q->ev_count) % QMP_EVENT_QUEUE_MAX] = ev;
	q->ev_count++;
}

/* Does reply msg answer the command we wait for? An error without an id is QEMU saying it
 * could not parse a request, and we have only one in flight. */
static int qmp_reply_matches(json_object *msg, int kind, const char *want_id)
{
	json_object *id;
	if (!want_id)
		return 0;
	if (!json_object_object_get_ex(msg, "id", &id))
		return kind == QMP_MSG_ERROR;
	return gw_json_streq(id, want_id);
}

/* Consume the complete lines in the buffer: queue events, hand a wanted reply to w. Stops
 * after the wanted message so that later lines stay for the next call. Returns 1 when w was
 * satisfied, 0 when more input is needed. */
static int qmp_take_lines(struct qmp *q, struct qmp_want *w, struct gw_err *err)
{
	size_t off = 0;
	int found = 0, rc = 0;
	while (!found) {
		char *nl = memchr(q->buf + off, '\n', q->len - off);
		if (!nl)
			break;
		size_t llen = (size_t)(nl - (q->buf + off));
		const char *line = q->buf + off;
		off += llen + 1;
		size_t t = 0;
		while (t < llen && isspace((unsigned char)line[t]))
			t++;
		if (t == llen)
			continue;
		json_object *msg;
		int kind = qmp_parse_line(line, llen, &msg, err);
		if (kind < 0) {
			rc = qmp_break(q, kind, err);
			break;
		}
		if (kind == QMP_MSG_EVENT) {
			qmp_queue_event(q, msg);
		} else if (kind == QMP_MSG_GREETING && w && w->greeting) {
			w->reply = msg;
			found = 1;
		} else if (kind != QMP_MSG_GREETING && w && qmp_reply_matches(msg, kind, w->id)) {
			w->reply = msg;
			found = 1;
		} else {
			json_object_put(msg); /* a late reply to a command that timed out */
		}
	}
	memmove(q->buf, q->buf + off, q->len - off);
	q->len -= off;
	if (rc < 0)
		return rc;
	if (!found && q->len > QMP_LINE_MAX) {
		gw_err_set(err, EMSGSIZE, "qmp: line from QEMU longer than %d bytes", QMP_LINE_MAX);
		return qmp_break(q, -EMSGSIZE, err);
	}
	return found;
}

/* Wait up to timeout_ms (0 = don't wait) for input and read one chunk. Returns bytes read,
 * 0 if nothing came, -EPIPE when QEMU closed the monitor. */
static int qmp_fill(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap * 2;
		if (ncap > QMP_LINE_MAX + 1)
			ncap = QMP_LINE_MAX + 1;
		if (ncap <= q->cap) /* cannot happen: take_lines rejects a full buffer */
			return gw_err_set(err, EMSGSIZE, "qmp: input buffer full");
		char *nb = realloc(q->buf, ncap);
		if (!nb)
			return gw_err_set(err, ENOMEM, "qmp: out of memory");
		q->buf = nb;
		q->cap = ncap;
	}
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
	int pr = poll(&pfd, 1, timeout_ms);
	if (pr < 0 && errno == EINTR)
		return 0;
	if (pr < 0)
		return gw_err_sys(err, errno, "qmp: poll");
	if (pr == 0)
		return 0;
	ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		gw_err_set(err, EPIPE, "qmp: QEMU closed the monitor connection");
		return qmp_break(q, -EPIPE, err);
	}
	if (n < 0)
		return gw_err_sys(err, errno, "qmp: read");
	q->len += (size_t)n;
	return (int)n;
}

/* Read until w is satisfied or the deadline passes (-ETIMEDOUT, message left to caller). */
static int qmp_wait_for(struct qmp *q, struct qmp_want *w, int64_t deadline, struct gw_err *err)
{
	for (;;) {
		int r = qmp_take_lines(q, w, err);
		if (r != 0)
			return r < 0 ? r : 0;
		int left = remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (q->wait) {
			q->wait(q->wait_arg, q->fd, left);
			left = 0; /* the monitor is readable, or the time is up */
		}
		r = qmp_fill(q, left, err);
		if (r < 0)
			return r;
	}
}

static int qmp_send(struct qmp *q, const char *data, size_t len, int fd, int64_t deadline,
		    struct gw_err *err)
{
	while (len) {
		struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (fd >= 0) {
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = sizeof(cm.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
			int left = remaining_ms(deadline);
			if (left == 0)
				return gw_err_set(err, ETIMEDOUT, "qmp: monitor not writable");
			if (poll(&pfd, 1, left) < 0 && errno != EINTR)
				return gw_err_sys(err, errno, "qmp: poll");
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			gw_err_set(err, EPIPE, "qmp: QEMU closed the monitor connection");
			return qmp_break(q, -EPIPE, err);
		}
		if (n < 0)
			return gw_err_sys(err, errno, "qmp: send");
		data += n;
		len -= (size_t)n;
		fd = -1; /* the fd travels with the first byte */
	}
	return 0;
}

static int qmp_do_execute(struct qmp *q, const char *cmd, json_object *args, int fd,
			  json_object **ret, int timeout_ms, struct gw_err *err)
{
	if (ret)
		*ret = NULL;
	int rc = qmp_check_broken(q, err);
	if (rc < 0)
		return rc;
	if (args && !json_object_is_type(args, json_type_object))
		return gw_err_set(err, EINVAL, "qmp %s: arguments must be a JSON object", cmd);
	if (timeout_ms <= 0)
		timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
	int64_t deadline = deadline_after(timeout_ms);

	char id[32];
	snprintf(id, sizeof(id), "godwit-%llu", ++q->next_id);
	json_object *req = json_object_new_object();
	if (!req)
		return gw_err_set(err, ENOMEM, "qmp %s: out of memory", cmd);
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	json_object_object_add(req, "id", json_object_new_string(id));
	size_t jlen;
	const char *js = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &jlen);
	cleanup_free char *line = js ? malloc(jlen + 2) : NULL;
	if (!line) {
		json_object_put(req);
		return gw_err_set(err, ENOMEM, "qmp %s: out of memory", cmd);
	}
	memcpy(line, js, jlen);
	line[jlen] = '\n';
	line[jlen + 1] = '\0';
	json_object_put(req);

	rc = qmp_send(q, line, jlen + 1, fd, deadline, err);
	if (rc < 0)
		return gw_err_prefix(err, "qmp %s", cmd);

	struct qmp_want w = { .id = id };
	rc = qmp_wait_for(q, &w, deadline, err);
	if (rc == -ETIMEDOUT)
		return gw_err_set(err, ETIMEDOUT, "qmp %s: no reply within %d ms", cmd, timeout_ms);
	if (rc < 0)
		return gw_err_prefix(err, "qmp %s", cmd);

	json_object *v;
	if (json_object_object_get_ex(w.reply, "error", &v)) {
		json_object *cls, *desc;
		json_object_object_get_ex(v, "class", &cls);
		json_object_object_get_ex(v, "desc", &desc);
		gw_err_set(err, EREMOTEIO, "%s: %s: %s", cmd, json_object_get_string(cls),
			   json_object_get_string(desc));
		json_object_put(w.reply);
		return -EREMOTEIO;
	}
	json_object_object_get_ex(w.reply, "return", &v);
	if (ret)
		*ret = json_object_get(v);
	json_object_put(w.reply);
	return 0;
}

int qmp_execute(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
		int timeout_ms, struct gw_err *err)
{
	return qmp_do_execute(q, cmd, args, -1, ret, timeout_ms, err);
}

int qmp_execute_with_fd(struct qmp *q, const char *cmd, json_object *args, int fd,
			json_object **ret, int timeout_ms, struct gw_err *err)
{
	if (fd < 0)
		return gw_err_set(err, EBADF, "qmp %s: no file descriptor to pass", cmd);
	return qmp_do_execute(q, cmd, args, fd, ret, timeout_ms, err);
}

int qmp_open_fd(int fd, int timeout_ms, struct qmp **out, struct gw_err *err)
{
	*out = NULL;
	if (timeout_ms <= 0)
		timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
	int64_t deadline = deadline_after(timeout_ms);
	struct qmp *q = calloc(1, sizeof(*q));
	char *buf = malloc(QMP_BUF_INIT);
	if (!q || !buf) {
		free(q);
		free(buf);
		close(fd);
		return gw_err_set(err, ENOMEM, "qmp: out of memory");
	}
	q->fd = fd;
	q->buf = buf;
	q->cap = QMP_BUF_INIT;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int rc = gw_err_sys(err, errno, "qmp: fcntl");
		qmp_close(q);
		return rc;
	}

	struct qmp_want w = { .greeting = 1 };
	int rc = qmp_wait_for(q, &w, deadline, err);
	if (rc == -ETIMEDOUT)
		rc = gw_err_set(err, ETIMEDOUT, "qmp: no greeting within %d ms", timeout_ms);
	if (rc < 0) {
		qmp_close(q);
		return gw_err_prefix(err, "qmp handshake");
	}
	q->greeting = w.reply;
	int left = remaining_ms(deadline);
	rc = qmp_execute(q, "qmp_capabilities", NULL, NULL, left ? left : 1, err);
	if (rc < 0) {
		qmp_close(q);
		return gw_err_prefix(err, "qmp handshake");
	}
	*out = q;
	return 0;
}

int qmp_connect(const char *path, int timeout_ms, struct qmp **out, struct gw_err *err)
{
	*out = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return gw_err_set(err, ENAMETOOLONG, "qmp: socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	if (timeout_ms <= 0)
		timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return gw_err_sys(err, errno, "qmp: socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			int left = remaining_ms(deadline);
			int rc = qmp_open_fd(fd, left ? left : 1, out, err);
			return rc < 0 ? gw_err_prefix(err, "%s", path) : 0;
		}
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR) ||
		    remaining_ms(deadline) == 0)
			return gw_err_sys(err, e, "qmp: connect %s", path);
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

void qmp_set_wait(struct qmp *q, void (*wait)(void *arg, int fd, int ms), void *arg)
{
	q->wait = wait;
	q->wait_arg = arg;
}

int qmp_fd(const struct qmp *q)
{
	return q->fd;
}

int qmp_pump(struct qmp *q, struct gw_err *err)
{
	int rc = qmp_check_broken(q, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < QMP_PUMP_READS_MAX; i++) {
		rc = qmp_take_lines(q, NULL, err);
		if (rc < 0)
			return rc;
		rc = qmp_fill(q, 0, err);
		if (rc <= 0)
			return rc < 0 ? rc : qmp_take_lines(q, NULL, err);
	}
	rc = qmp_take_lines(q, NULL, err);
	return rc < 0 ? rc : 0;
}

json_object *qmp_next_event(struct qmp *q)
{
	if (!q->ev_count)
		return NULL;
	json_object *ev = q->events[q->ev_head];
	q->ev_head = (q->ev_head + 1) % QMP_EVENT_QUEUE_MAX;
	q->ev_count--;
	return ev;
}

/* Remove and return the oldest queued event called name, keeping the others in order. */
static json_object *qmp_take_event(struct qmp *q, const char *name)
{
	for (size_t i = 0; i < q->ev_count; i++) {
		size_t at = (q->ev_head + i) % QMP_EVENT_QUEUE_MAX;
		json_object *ev = q->events[at], *n;
		if (!json_object_object_get_ex(ev, "event", &n) || !gw_json_streq(n, name))
			continue;
		for (size_t j = i; j + 1 < q->ev_count; j++)
			q->events[(q->ev_head + j) % QMP_EVENT_QUEUE_MAX] =
				q->events[(q->ev_head + j + 1) % QMP_EVENT_QUEUE_MAX];
		q->ev_count--;
		return ev;
	}
	return NULL;
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_object **ev,
		   struct gw_err *err)
{
	if (ev)
		*ev = NULL;
	int rc = qmp_check_broken(q, err);
	if (rc < 0)
		return rc;
	int64_t deadline = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		rc = qmp_take_lines(q, NULL, err);
		if (rc < 0)
			return rc;
		json_object *e = qmp_take_event(q, name);
		if (e) {
			if (ev)
				*ev = e;
			else
				json_object_put(e);
			return 0;
		}
		int left = remaining_ms(deadline);
		if (left == 0)
			return gw_err_set(err, ETIMEDOUT, "qmp: no %s event within %d ms", name,
					  timeout_ms);
		rc = qmp_fill(q, left, err);
		if (rc < 0)
			return rc;
	}
}

unsigned long qmp_events_dropped(const struct qmp *q)
{
	return q->ev_dropped;
}

json_object *qmp_greeting(const struct qmp *q)
{
	return q->greeting;
}

int qmp_qemu_version(const struct qmp *q, int *major, int *minor)
{
	json_object *o = q ? q->greeting : NULL, *v;
	const char *path[] = { "QMP", "version", "qemu" };
	for (size_t i = 0; i < ARRAY_SIZE(path); i++)
		if (!o || !json_object_object_get_ex(o, path[i], &o))
			return -EPROTO;
	if (!json_object_object_get_ex(o, "major", &v) || !json_object_is_type(v, json_type_int))
		return -EPROTO;
	*major = json_object_get_int(v);
	if (!json_object_object_get_ex(o, "minor", &v) || !json_object_is_type(v, json_type_int))
		return -EPROTO;
	*minor = json_object_get_int(v);
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	while (q->ev_count)
		json_object_put(qmp_next_event(q));
	json_object_put(q->greeting);
	free(q->buf);
	free(q);
}
