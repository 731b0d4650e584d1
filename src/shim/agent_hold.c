/* Holding a migrated guest's output (docs/migration-protocol.md, "Early resume"): the
 * destination's guest runs from the moment its QEMU has the state, before the source's COMMIT
 * brings the agent link's state. Until then a thread reads what the agent sends, stamps each
 * read with its host arrival time and keeps it; nothing is parsed, acknowledged or logged, so
 * if the COMMIT never comes the held bytes go with the guest and nobody saw them. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "godwit/util.h"
#include "shim.h"

/* Past this the thread stops reading: the agent then waits in its port (back-pressure, nothing
 * is dropped) until the link state arrives. */
#define HOLD_MAX_BYTES (16u << 20)

struct alink_hold {
	pthread_t th;
	int fd;		/* the agent socket (not ours: alink owns it) */
	int stop_fd;	/* eventfd: end the thread */
	struct alink_held *head, *tail;
	size_t bytes;
};

static void *hold_main(void *arg)
{
	struct alink_hold *h = arg;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = h->fd, .events = POLLIN },
					 { .fd = h->stop_fd, .events = POLLIN } };
		if (h->bytes >= HOLD_MAX_BYTES)
			pfd[0].fd = -1;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;
		uint8_t buf[65536];
		ssize_t n = read(h->fd, buf, sizeof(buf));
		int64_t now = gw_now_real_ns();
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			break; /* the socket closed: the main loop sees it after the restore */
		}
		struct alink_held *c = malloc(sizeof(*c) + (size_t)n);
		if (!c)
			break; /* nothing held is acknowledged: the agent resends it after RESYNC */
		c->rx_ns = now;
		c->len = (size_t)n;
		c->next = NULL;
		memcpy(c->data, buf, (size_t)n);
		if (h->tail)
			h->tail->next = c;
		else
			h->head = c;
		h->tail = c;
		h->bytes += (size_t)n;
	}
	return NULL;
}

struct alink_hold *alink_hold_start(int fd, struct gw_err *err)
{
	struct alink_hold *h = calloc(1, sizeof(*h));
	if (!h) {
		gw_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	h->fd = fd;
	h->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (h->stop_fd < 0) {
		gw_err_sys(err, errno, "eventfd");
		free(h);
		return NULL;
	}
	int e = pthread_create(&h->th, NULL, hold_main, h);
	if (e) {
		gw_err_sys(err, e, "pthread_create");
		close(h->stop_fd);
		free(h);
		return NULL;
	}
	return h;
}

struct alink_held *alink_hold_stop(struct alink_hold *h)
{
	uint64_t one = 1;
	if (write(h->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write cannot fail with a counter this small */
	}
	pthread_join(h->th, NULL);
	close(h->stop_fd);
	struct alink_held *list = h->head;
	free(h);
	return list;
}

void alink_held_free(struct alink_held *list)
{
	while (list) {
		struct alink_held *n = list->next;
		free(list);
		list = n;
	}
}
