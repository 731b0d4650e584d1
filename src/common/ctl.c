/* The control API's transport (docs/api.md "Transport"): one JSON object per line over a unix
 * socket, shared by the shim (server) and its clients (CLI, migration source). */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "godwit/ctl.h"
#include "godwit/util.h"

static int fill_addr(struct sockaddr_un *a, const char *path, struct gw_err *err)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return gw_err_set(err, ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(a->sun_path, path);
	return 0;
}

int ctl_listen(const char *path, struct gw_err *err)
{
	struct sockaddr_un a;
	int r = fill_addr(&a, path, err);
	if (r < 0)
		return r;
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return gw_err_sys(err, errno, "socket");
	unlink(path);
	mode_t old = umask(0077);
	r = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0)
		return gw_err_sys(err, errno, "bind %s", path);
	if (listen(fd, 16) < 0)
		return gw_err_sys(err, errno, "listen %s", path);
	return steal_fd(fd);
}

int ctl_connect(const char *path, struct gw_err *err)
{
	struct sockaddr_un a;
	int r = fill_addr(&a, path, err);
	if (r < 0)
		return r;
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return gw_err_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return gw_err_sys(err, errno, "connect %s", path);
	return steal_fd(fd);
}

int ctl_send(int fd, json_object *msg, struct gw_err *err)
{
	return ctl_send_within(fd, msg, 5000, err);
}

int ctl_send_within(int fd, json_object *msg, int timeout_ms, struct gw_err *err)
{
	size_t len;
	const char *s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
	const char *parts[2] = { s, "\n" };
	size_t lens[2] = { len, 1 };
	for (int i = 0; i < 2; i++) {
		const char *p = parts[i];
		size_t left = lens[i];
		while (left) {
			ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				if (poll(&pfd, 1, timeout_ms) == 0)
					return gw_err_set(err, ETIMEDOUT, "control socket: peer not reading");
				continue;
			}
			if (w < 0)
				return gw_err_sys(err, errno, "control socket: send");
			p += w;
			left -= (size_t)w;
		}
	}
	return 0;
}

int ctl_reader_fill(struct ctl_reader *r, int fd, struct gw_err *err)
{
	if (r->cap - r->len < 65536) {
		size_t ncap = r->cap ? r->cap * 2 : 65536;
		if (ncap > CTL_LINE_MAX + 65536)
			return gw_err_set(err, EMSGSIZE, "control message longer than %d bytes",
					  CTL_LINE_MAX);
		char *nb = realloc(r->buf, ncap);
		if (!nb)
			return gw_err_set(err, ENOMEM, "out of memory");
		r->buf = nb;
		r->cap = ncap;
	}
	ssize_t n = recv(fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -EAGAIN;
	if (n < 0)
		return gw_err_sys(err, errno, "control socket: recv");
	r->len += (size_t)n;
	return (int)n;
}

int ctl_reader_next(struct ctl_reader *r, json_object **out, struct gw_err *err)
{
	char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
	if (!nl) {
		if (r->len > CTL_LINE_MAX)
			return gw_err_set(err, EMSGSIZE, "control message longer than %d bytes",
					  CTL_LINE_MAX);
		return 0;
	}
	size_t line = (size_t)(nl - r->buf);
	json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, r->buf, (int)line);
	enum json_tokener_error je = json_tokener_get_error(tok);
	int complete = json_tokener_get_parse_end(tok) == line;
	json_tokener_free(tok);
	memmove(r->buf, nl + 1, r->len - line - 1);
	r->len -= line + 1;
	if (!j || je != json_tokener_success || !complete ||
	    !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return gw_err_set(err, EPROTO, "malformed control message (want one JSON object per line)");
	}
	*out = j;
	return 1;
}

void ctl_reader_free(struct ctl_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int ctl_recv(struct ctl_reader *r, int fd, int timeout_ms, json_object **out, struct gw_err *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int n = ctl_reader_next(r, out, err);
		if (n != 0)
			return n < 0 ? n : 0;
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - gw_now_mono_ns();
			if (left <= 0)
				return gw_err_set(err, ETIMEDOUT, "no answer within %d ms", timeout_ms);
			wait = (int)(left / 1000000) + 1;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno != EINTR)
			return gw_err_sys(err, errno, "poll");
		if (pr <= 0)
			continue;
		n = ctl_reader_fill(r, fd, err);
		if (n == 0)
			return gw_err_set(err, EPIPE, "connection closed");
		if (n < 0 && n != -EAGAIN)
			return n;
	}
}

int ctl_call(int fd, struct ctl_reader *r, const char *cmd, json_object *args, json_object **ret,
	     ctl_event_fn on_event, void *opaque, int timeout_ms, struct gw_err *err)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	int rc = ctl_send(fd, req, err);
	json_object_put(req);
	if (rc < 0)
		return rc;
	for (;;) {
		json_object *m, *v;
		if ((rc = ctl_recv(r, fd, timeout_ms, &m, err)) < 0)
			return rc;
		if (json_object_object_get_ex(m, "return", &v)) {
			if (ret)
				*ret = json_object_get(v);
			json_object_put(m);
			return 0;
		}
		if (json_object_object_get_ex(m, "error", &v)) {
			json_object *d;
			const char *desc = json_object_object_get_ex(v, "desc", &d)
						   ? json_object_get_string(d) : "unknown error";
			rc = gw_err_set(err, EREMOTEIO, "%s", desc);
			json_object_put(m);
			return rc;
		}
		if (json_object_object_get_ex(m, "event", &v) && on_event) {
			rc = on_event(m, opaque);
			if (rc < 0) {
				json_object_put(m);
				return rc;
			}
		}
		json_object_put(m);
	}
}

json_object *ctl_make_return(json_object *ret)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "return", ret ? ret : json_object_new_object());
	return o;
}

json_object *ctl_make_error(const char *cls, const char *desc)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(o, "error", e);
	return o;
}

json_object *ctl_make_event(const char *name, json_object *data)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "event", json_object_new_string(name));
	json_object_object_add(o, "data", data ? data : json_object_new_object());
	json_object_object_add(o, "timestamp_ns", json_object_new_int64(gw_now_real_ns()));
	return o;
}
