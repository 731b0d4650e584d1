/* The guest's console (ttyS0: kernel messages) and the shim's own log, both kept to a size
 * (docs/security.md, "Quotas"): a guest that writes to its serial port without end, or makes
 * the shim log without end, cannot fill the host's disk.
 * QEMU writes the console into a socket whose other end the shim holds (a socketpair; QEMU's
 * end is its fd 5); the shim appends what comes to console.log, which becomes console.log.1
 * (one older file, replaced) at SHIM_CONSOLE_MAX. shim.log (the shim's stderr) does the same
 * at SHIM_OWN_LOG_MAX. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/util.h"
#include "shim.h"

int shim_console_open(struct container *ct, int *qemu_end, struct gw_err *err)
{
	int sv[2];
	shim_console_close(ct);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return gw_err_sys(err, errno, "socketpair for the console");
	/* a new VM's console starts a new file, as QEMU's own file chardev did */
	int lf = open(ct->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC |
		      O_NOFOLLOW, 0600);
	if (lf < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return gw_err_sys(err, e, "open %s", ct->console_path);
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	ct->console_fd = sv[0];
	ct->console_log_fd = lf;
	*qemu_end = sv[1];
	return 0;
}

void shim_console_close(struct container *ct)
{
	if (ct->console_fd >= 0)
		close(ct->console_fd);
	if (ct->console_log_fd >= 0)
		close(ct->console_log_fd);
	ct->console_fd = ct->console_log_fd = -1;
}

/* path becomes path.1 once fd (open on path, appending) reaches max: the new fd, or fd as it
 * was if the new file cannot be made */
static int cap_file(int fd, const char *path, uint64_t max)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < max)
		return fd;
	cleanup_free char *old = gw_strdup_printf("%s.1", path);
	if (!old || rename(path, old) < 0)
		return fd;
	int nfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	return nfd < 0 ? fd : nfd;
}

void shim_console_on_readable(struct container *ct)
{
	char buf[16384];
	/* a bounded turn: the loop has other work */
	for (int i = 0; i < 16 && ct->console_fd >= 0; i++) {
		ssize_t n = read(ct->console_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) { /* QEMU is gone */
			shim_console_close(ct);
			return;
		}
		gw_write_full(ct->console_log_fd, buf, (size_t)n);
		int fd = cap_file(ct->console_log_fd, ct->console_path, SHIM_CONSOLE_MAX);
		if (fd != ct->console_log_fd) {
			close(ct->console_log_fd);
			ct->console_log_fd = fd;
		}
	}
}

void shim_own_log_check(struct container *ct)
{
	struct stat st;
	if (fstat(2, &st) < 0 || (uint64_t)st.st_size < SHIM_OWN_LOG_MAX)
		return; /* the common case: no allocation */
	cleanup_free char *path = gw_strdup_printf("%s/shim.log", ct->dir);
	if (!path)
		return;
	int fd = cap_file(2, path, SHIM_OWN_LOG_MAX);
	if (fd != 2) {
		fflush(stderr);
		dup2(fd, 2);
		close(fd);
	}
}
