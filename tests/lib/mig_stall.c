/* Fault injection for tests/e2e/35-migrate-faults.sh, kept out of godwit itself: preloaded
 * (LD_PRELOAD) into a destination shim, it holds the shim for 3 s at a point of a move named
 * by GODWIT_TEST_MIG_STALL, so that the test can kill the shim or its QEMU right there:
 *   prepare  before the PREPARE message goes out (QEMU started, the disk exported)
 *   done     after the DONE message went out (the log tail and COMMIT not yet read)
 * It watches the shim's send() calls for the migration protocol's frame headers
 * (docs/migration-protocol.md: "GWM1", version, type, length, ...), writes "shim: test stall
 * at PHASE" to stderr (the shim's log) when the hold begins, and does nothing in any other
 * process (the CLI, ip, QEMU inherit the variable too). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_SIZE 20
#define TYPE_PREPARE 3
#define TYPE_DONE 9

static int armed = -1;		/* -1 not yet known, 0 off, else the type to stall at */
static uint32_t done_left;	/* DONE's payload bytes still to go out */
static int done_pending;

static int is_shim(void)
{
	char buf[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	for (ssize_t i = 0; i + 6 <= n; i++)
		if (!memcmp(buf + i, "__shim", 6))
			return 1;
	return 0;
}

static void arm(void)
{
	const char *s = getenv("GODWIT_TEST_MIG_STALL");
	armed = !s || !is_shim() ? 0 : !strcmp(s, "prepare") ? TYPE_PREPARE
				     : !strcmp(s, "done") ? TYPE_DONE : 0;
}

static void stall(const char *phase)
{
	dprintf(2, "shim: test stall at %s\n", phase);
	poll(NULL, 0, 3000);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
	if (armed < 0)
		arm();
	const uint8_t *p = buf;
	int header = armed && len == HDR_SIZE && !memcmp(p, "GWM1", 4);
	int type = header ? (p[6] << 8 | p[7]) : 0;
	if (type == TYPE_PREPARE && armed == TYPE_PREPARE)
		stall("prepare");
	ssize_t n = real(fd, buf, len, flags);
	if (n > 0 && type == TYPE_DONE && armed == TYPE_DONE) {
		done_left = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | p[10] << 8 | p[11];
		done_pending = 1;
	} else if (n > 0 && done_pending && !header) {
		done_left = (size_t)n < done_left ? done_left - (uint32_t)n : 0;
	}
	if (done_pending && done_left == 0 && n > 0) {
		done_pending = 0;
		stall("done");
	}
	return n;
}
