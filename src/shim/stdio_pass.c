/* The OCI runtime's stdio (docs/oci-runtime.md): conmon (or whoever ran `godwit-runtime
 * create`) hands the container its stdout and stderr as the runtime's own, and reads the
 * container's output from them. The shim inherits them and writes the main process's output
 * there as well as into output.log. A reader that stops reading does not stall the shim: a
 * write waits at most SHIM_STDIO_WAIT_MS for room, then that chunk is dropped from the pipe
 * (counted in shim.log; output.log still has it). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "godwit/util.h"
#include "shim.h"

#define SHIM_STDIO_WAIT_MS 1000

void shim_stdio_take(struct container *ct, int first_fd)
{
	for (int i = 0; i < 3; i++) {
		int fd = first_fd < 0 ? -1 : fcntl(first_fd + i, F_DUPFD_CLOEXEC, 10);
		if (first_fd >= 0)
			close(first_fd + i);
		if (fd >= 0 && i > 0)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		ct->stdio_fd[i] = fd;
	}
}

void shim_stdio_write(struct container *ct, int stream, const void *data, size_t len)
{
	int fd = stream == 1 || stream == 2 ? ct->stdio_fd[stream] : -1;
	const char *p = data;
	while (fd >= 0 && len > 0) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (n < 0 && errno == EAGAIN && poll(&pfd, 1, SHIM_STDIO_WAIT_MS) > 0 &&
		    !(pfd.revents & (POLLERR | POLLHUP)))
			continue;
		/* gone, or not read for a second: the rest of this chunk stays in output.log */
		fprintf(stderr, "shim %s: %zu bytes of %s not passed to the runtime's %s (%s)\n",
			ct->cfg.name, len, stream == 1 ? "stdout" : "stderr",
			stream == 1 ? "stdout" : "stderr",
			n < 0 && errno != EAGAIN ? strerror(errno) : "its reader is not reading");
		if (n < 0 && errno == EPIPE) {
			close(fd);
			ct->stdio_fd[stream] = -1;
		}
		return;
	}
}

void shim_stdio_close(struct container *ct)
{
	for (int i = 0; i < 3; i++) {
		if (ct->stdio_fd[i] >= 0)
			close(ct->stdio_fd[i]);
		ct->stdio_fd[i] = -1;
	}
}
