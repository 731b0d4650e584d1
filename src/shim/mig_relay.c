/* QEMU's RAM channels through the move's own connections (docs/migration-protocol.md,
 * "Channels"): with multifd QEMU opens its channels itself, to a socket address, so each end's
 * QEMU talks to a unix socket in its container's vm/ directory and the shim splices every byte
 * between that and one of the move's TCP connections, each admitted by the move's token. One
 * thread per channel, both directions, no copy through user space (splice through a pipe). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/util.h"
#include "migrate.h"

/* small, as the sockets' buffers are (mig_sock_tune): bytes queued here are bytes QEMU
 * counts as sent */
#define RELAY_PIPE_BYTES (256 * 1024)
#define RELAY_CHUNK (128 * 1024)

/* direction i reads fd[i] and writes fd[1 - i] */
struct relay_dir {
	int from, to;
	int pipe[2];
	size_t held;	/* bytes in the pipe */
	int eof;	/* from said EOF and the pipe is empty: to's write side shut */
};

struct mig_relay {
	pthread_t th;
	int fd[2];
	int stop_fd;
	struct relay_dir d[2];
	int started;
};

/* One step of a direction; -1: the channel broke */
static int relay_step(struct relay_dir *d, short rev_from, short rev_to)
{
	if ((rev_from & (POLLIN | POLLHUP | POLLERR)) && !d->eof) {
		ssize_t n = splice(d->from, NULL, d->pipe[1], NULL, RELAY_CHUNK,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->held += (size_t)n;
		else if (n == 0)
			d->eof = 1;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	if ((rev_to & (POLLOUT | POLLERR | POLLHUP)) && d->held) {
		ssize_t n = splice(d->pipe[0], NULL, d->to, NULL, d->held,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->held -= (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
	if (d->eof == 1 && !d->held) {
		shutdown(d->to, SHUT_WR);
		d->eof = 2;
	}
	return 0;
}

static void *relay_main(void *arg)
{
	struct mig_relay *r = arg;
	while (r->d[0].eof < 2 || r->d[1].eof < 2) {
		struct pollfd p[3] = { { .fd = r->fd[0] }, { .fd = r->fd[1] },
				       { .fd = r->stop_fd, .events = POLLIN } };
		for (int i = 0; i < 2; i++) {
			if (!r->d[i].eof && r->d[i].held < RELAY_PIPE_BYTES / 2)
				p[i].events |= POLLIN;
			if (r->d[i].held)
				p[1 - i].events |= POLLOUT;
		}
		/* nothing wanted of an end: its hang-up must not spin us */
		for (int i = 0; i < 2; i++)
			if (!p[i].events)
				p[i].fd = -1;
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		int bad = 0;
		for (int i = 0; i < 2 && !bad; i++)
			bad = relay_step(&r->d[i], p[i].revents, p[1 - i].revents) < 0;
		if (bad)
			break;
	}
	/* whatever ended it, both ends see the channel end */
	shutdown(r->fd[0], SHUT_RDWR);
	shutdown(r->fd[1], SHUT_RDWR);
	return NULL;
}

int mig_relay_start(int a, int b, struct mig_relay **out, struct gw_err *err)
{
	struct mig_relay *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r) {
		close(a);
		close(b);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	r->fd[0] = a;
	r->fd[1] = b;
	r->stop_fd = eventfd(0, EFD_CLOEXEC);
	r->d[0] = (struct relay_dir){ .from = a, .to = b, .pipe = { -1, -1 } };
	r->d[1] = (struct relay_dir){ .from = b, .to = a, .pipe = { -1, -1 } };
	int rc = r->stop_fd < 0 ? gw_err_sys(err, errno, "eventfd") : 0;
	for (int i = 0; rc == 0 && i < 2; i++) {
		if (pipe2(r->d[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
			rc = gw_err_sys(err, errno, "pipe");
		else
			fcntl(r->d[i].pipe[0], F_SETPIPE_SZ, RELAY_PIPE_BYTES);
	}
	for (int i = 0; rc == 0 && i < 2; i++)
		fcntl(r->fd[i], F_SETFL, fcntl(r->fd[i], F_GETFL) | O_NONBLOCK);
	if (rc == 0 && (rc = -pthread_create(&r->th, NULL, relay_main, r)) < 0)
		gw_err_sys(err, -rc, "pthread_create");
	r->started = rc == 0;
	*out = r;
	if (rc < 0) {
		mig_relay_stop(r);
		*out = NULL;
	}
	return rc;
}

void mig_relay_stop(struct mig_relay *r)
{
	if (!r)
		return;
	if (r->started) {
		uint64_t one = 1;
		if (write(r->stop_fd, &one, sizeof(one)) < 0) {
			/* the thread still ends once both ends close */
		}
		pthread_join(r->th, NULL);
	}
	for (int i = 0; i < 2; i++) {
		close(r->fd[i]);
		if (r->d[i].pipe[0] >= 0)
			close(r->d[i].pipe[0]);
		if (r->d[i].pipe[1] >= 0)
			close(r->d[i].pipe[1]);
	}
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	free(r);
}
