/* TCP endpoints for migration (include/godwit/net.h): parse "tcp:HOST:PORT", connect with a
 * timeout, listen. */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "godwit/net.h"
#include "godwit/util.h"

int net_parse_tcp(const char *uri, char host[256], char port[16], struct gw_err *err)
{
	if (strncmp(uri, "tcp:", 4))
		return gw_err_set(err, EINVAL, "address '%s' must look like tcp:HOST:PORT", uri);
	const char *h = uri + 4, *colon;
	size_t hl;
	if (*h == '[') {
		const char *rb = strchr(h, ']');
		if (!rb || rb[1] != ':')
			return gw_err_set(err, EINVAL, "bad IPv6 address in '%s'", uri);
		hl = (size_t)(rb - h - 1);
		h++;
		colon = rb + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return gw_err_set(err, EINVAL, "address '%s' has no port", uri);
		hl = (size_t)(colon - h);
	}
	const char *p = colon + 1;
	size_t pl = strlen(p);
	if (hl == 0 || hl > 255 || pl == 0 || pl > 5 || strspn(p, "0123456789") != pl ||
	    atoi(p) < 1 || atoi(p) > 65535)
		return gw_err_set(err, EINVAL, "bad host or port in '%s'", uri);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, p, pl + 1);
	return 0;
}

static int resolve(const char *uri, int passive, struct addrinfo **res, struct gw_err *err)
{
	char host[256], port[16];
	int r = net_parse_tcp(uri, host, port, err);
	if (r < 0)
		return r;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	int g = getaddrinfo(host, port, &hints, res);
	if (g != 0)
		return gw_err_set(err, EHOSTUNREACH, "resolve %s: %s", host, gai_strerror(g));
	return 0;
}

int net_connect_tcp(const char *uri, int timeout_ms, struct gw_err *err)
{
	return net_connect_tcp_wait(uri, timeout_ms, NULL, NULL, err);
}

int net_connect_tcp_wait(const char *uri, int timeout_ms,
			 int (*wait)(void *arg, int fd, short events, int timeout_ms), void *arg,
			 struct gw_err *err)
{
	struct addrinfo *res;
	int r = resolve(uri, 0, &res, err);
	if (r < 0)
		return r;
	int fd = -1, e = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			e = errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int so = 0;
		socklen_t sl = sizeof(so);
		if ((wait ? wait(arg, fd, POLLOUT, timeout_ms) : poll(&pfd, 1, timeout_ms)) <= 0)
			so = ETIMEDOUT;
		else
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
		if (so) {
			e = so;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return gw_err_sys(err, e, "connect to %s", uri);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int net_listen_tcp(const char *uri, struct gw_err *err)
{
	struct addrinfo *res;
	int r = resolve(uri, 1, &res, err);
	if (r < 0)
		return r;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return gw_err_sys(err, e, "listen on %s", uri);
	}
	freeaddrinfo(res);
	return fd;
}
