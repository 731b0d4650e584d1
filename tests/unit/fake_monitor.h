/* The QEMU side of a fake monitor for the QMP unit tests (test_qmp.c, test_hv_vm.c): read one
 * line the client sent, byte by byte, with an fd passed alongside (SCM_RIGHTS). */
#ifndef GODWIT_TEST_FAKE_MONITOR_H
#define GODWIT_TEST_FAKE_MONITOR_H

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* One line (without its newline) from fd into buf; *passed: an fd that came with it (else
 * left as it was). Returns its length, 0 at EOF or on an error. */
static inline size_t fm_read_line(int fd, char *buf, size_t cap, int *passed)
{
	size_t n = 0;
	while (n < cap - 1) {
		char c;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { .iov_base = &c, .iov_len = 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) <= 0)
			return 0;
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		if (h && h->cmsg_type == SCM_RIGHTS)
			memcpy(passed, CMSG_DATA(h), sizeof(int));
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return n;
}

#endif
