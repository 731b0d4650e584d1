/* The console of an OCI container with process.terminal (docs/oci-runtime.md): a host
 * pseudo-terminal whose master goes to the caller over --console-socket (runc's protocol: one
 * message on a unix stream socket, the master as SCM_RIGHTS, the terminal's name as the
 * bytes) and whose slave becomes the shim's stdio. The slave is raw: the guest's own tty does
 * the line discipline (echo, ^C), the host's only carries bytes. The shim reads what is typed
 * there, writes the output there and passes its window size on. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "oci.h"
#include "godwit/util.h"

static int send_master(const char *path, int master, const char *name, struct gw_err *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return gw_err_set(err, ENAMETOOLONG, "--console-socket %s: path too long", path);
	strcpy(a.sun_path, path);
	cleanup_close int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return gw_err_sys(err, errno, "--console-socket %s", path);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c = { 0 };
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			    .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(s, &m, MSG_NOSIGNAL) < 0)
		return gw_err_sys(err, errno, "--console-socket %s: send", path);
	return 0;
}

int oci_console_open(const char *socket_path, struct gw_err *err)
{
	cleanup_close int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[64];
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof(name)) != 0)
		return gw_err_sys(err, errno, "a terminal for the console");
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return gw_err_sys(err, errno, "open %s", name);
	struct termios t;
	if (tcgetattr(slave, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(slave, TCSANOW, &t);
	}
	int r = send_master(socket_path, master, name, err);
	if (r < 0) {
		close(slave);
		return r;
	}
	return slave;
}
