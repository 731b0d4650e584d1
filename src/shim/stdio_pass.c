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
#include <sys/ioctl.h>
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
	ct->stdio_tty = ct->stdio_fd[1] >= 0 && isatty(ct->stdio_fd[1]);
}

#define STDIO_IN_CHUNK 16384

int shim_stdio_in_fd(struct container *ct)
{
	return ct->cfg.open_stdin && ct->stdio_fd[0] >= 0 &&
	       shim_input_main_room(ct, STDIO_IN_CHUNK) ? ct->stdio_fd[0] : -1;
}

void shim_stdio_on_input(struct container *ct)
{
	char buf[STDIO_IN_CHUNK];
	struct gw_err err = { 0 };
	ssize_t n = read(ct->stdio_fd[0], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF (a terminal's: EIO once its master is closed); a terminal has no EOF to pass */
		close(ct->stdio_fd[0]);
		ct->stdio_fd[0] = -1;
		if (!ct->stdio_tty && shim_input_main(ct, "", 0, &err) < 0)
			fprintf(stderr, "shim %s: stdin EOF: %s\n", ct->cfg.name, err.msg);
		return;
	}
	if (shim_input_main(ct, buf, (size_t)n, &err) < 0) /* room was checked: not expected */
		fprintf(stderr, "shim %s: %zd bytes of stdin lost: %s\n", ct->cfg.name, n, err.msg);
}

void shim_stdio_size_check(struct container *ct)
{
	struct winsize ws;
	if (!ct->stdio_tty || ct->stdio_fd[1] < 0 || ioctl(ct->stdio_fd[1], TIOCGWINSZ, &ws) < 0 ||
	    (ws.ws_row == ct->winsize[0] && ws.ws_col == ct->winsize[1]))
		return;
	ct->winsize[0] = ws.ws_row;
	ct->winsize[1] = ws.ws_col;
	struct gw_err err = { 0 };
	if (ct->started && alink_send_winsize(ct, 0, ws.ws_row, ws.ws_col, &err) < 0)
		fprintf(stderr, "shim %s: window size: %s\n", ct->cfg.name, err.msg);
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
	ct->stdio_tty = 0;
	for (int i = 0; i < 3; i++) {
		if (ct->stdio_fd[i] >= 0)
			close(ct->stdio_fd[i]);
		ct->stdio_fd[i] = -1;
	}
}
