/* STDIN frames into container processes (docs/agent-protocol.md section 2): a pipe's or a
 * tty's write end is non-blocking, and what it cannot take now waits in the process's queue
 * until poll() says it can. Once AGENT_INPUT_MAX bytes wait in all, main.c stops reading the
 * port: the host's link queue fills and its clients are told "Busy" (back-pressure end to end,
 * nothing dropped), while the output of every process goes on. A process that exits drops
 * what waited for it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

int input_fd(const struct agent_proc *p)
{
	return p->tty_fd >= 0 ? p->tty_fd : p->in_fd;
}

void input_drop(struct agent *a, struct agent_proc *p)
{
	a->in_pending -= p->in_len;
	free(p->in_buf);
	p->in_buf = NULL;
	p->in_len = 0;
}

/* all of it written after an EOF (or its reader gone): a pipe is closed, a tty has no EOF */
static void end_input(struct agent *a, struct agent_proc *p)
{
	input_drop(a, p);
	if (p->tty_fd < 0 && p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
}

void input_flush(struct agent *a, struct agent_proc *p)
{
	int fd = input_fd(p);
	size_t off = 0;

	while (fd >= 0 && off < p->in_len) {
		ssize_t n = write(fd, p->in_buf + off, p->in_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) { /* the reader is gone: nothing more will be read */
			agent_dbg(a, "chan %u: stdin: %s", p->chan, strerror(errno));
			p->in_eof = true;
			off = p->in_len;
			break;
		}
		off += (size_t)n;
	}
	memmove(p->in_buf, p->in_buf + off, p->in_len - off);
	p->in_len -= off;
	a->in_pending -= off;
	if (p->in_eof && !p->in_len)
		end_input(a, p);
}

void input_add(struct agent *a, struct agent_proc *p, const uint8_t *b, size_t len)
{
	if (input_fd(p) < 0 || p->in_eof || p->reaped)
		return;
	if (!len) {
		p->in_eof = p->tty_fd < 0; /* EOF means nothing to a terminal: ^D is a byte */
	} else {
		uint8_t *nb = realloc(p->in_buf, p->in_len + len);

		if (!nb) {
			agent_log("chan %u: stdin: out of memory, %zu bytes dropped", p->chan, len);
			return;
		}
		memcpy(nb + p->in_len, b, len);
		p->in_buf = nb;
		p->in_len += len;
		a->in_pending += len;
	}
	input_flush(a, p);
}
