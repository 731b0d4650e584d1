/* gwtest: a small static program for end-to-end tests, put into the test images by
 * tests/lib/mkimages.sh. Each subcommand prints something a test can assert on; the periodic
 * ones (counter, heartbeat, memtest) prove liveness and memory integrity across migration;
 * soak and soakcheck (tests/lib/gwsoak.c) hold and check every resource a move must carry;
 * hostile plays a guest whose root attacks the host through the agent link and floods;
 * serve is bench/network.sh's TCP server, the same in the godwit container and the anchor. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* tests/lib/gwsoak.c */
int soak_main(long mib, long mem_ms);
int soakcheck_main(void);
/* shared with gwsoak.c */
void sleep_ms(long ms);
uint64_t pattern(uint64_t p, uint64_t it);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0)
		;
}

/* The word stored at page p after iteration it: any lost or stale page shows. */
uint64_t pattern(uint64_t p, uint64_t it)
{
	uint64_t x = (p + 1) * 0x9e3779b97f4a7c15ull ^ (it + 1) * 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 31);
}

/* secret SEED MIB: a marker made from SEED ("GW<SEED>MARK", SEED reversed after it, so that
 * neither argv nor the log holds it) fills MIB of memory and the file /secret (fsynced); then
 * every second the memory is checked and "secret ok N" printed. What a capture of a move's
 * link must not show in the clear (tests/e2e/65-tls.sh). */
static int secret(const char *seed, long mib)
{
	char mark[160];
	size_t sl = strlen(seed) < 60 ? strlen(seed) : 60;
	int n = snprintf(mark, sizeof(mark), "GW%.*sMARK", (int)sl, seed);
	for (size_t i = 0; i < sl; i++)
		mark[n++] = seed[sl - 1 - i];
	size_t len = (size_t)mib << 20;
	char *m = malloc(len);
	if (!m)
		return 1;
	for (size_t o = 0; o + (size_t)n <= len; o += (size_t)n)
		memcpy(m + o, mark, (size_t)n);
	FILE *f = fopen("/secret", "w");
	if (!f || fwrite(m, 1, 1 << 20, f) != 1 << 20 || fflush(f) || fsync(fileno(f)))
		return 1;
	fclose(f);
	printf("secret ready\n");
	for (long i = 0;; i++) {
		for (size_t o = 0; o + (size_t)n <= len; o += (size_t)n)
			if (memcmp(m + o, mark, (size_t)n)) {
				printf("secret CORRUPT at %zu\n", o);
				return 1;
			}
		printf("secret ok %ld\n", i);
		sleep_ms(1000);
	}
}

/* serve PORT ECHO: a TCP server on every address; each connection, in a child of its own,
 * gets back what it sends (ECHO 1) or is read to its end and dropped (0) */
static int serve(long port, long echo)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
	signal(SIGCHLD, SIG_IGN);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0) {
		printf("serve: port %ld: cannot listen\n", port);
		return 1;
	}
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			static char buf[65536];
			ssize_t n;
			while ((n = read(c, buf, sizeof(buf))) > 0)
				if (echo && write(c, buf, (size_t)n) != n)
					break;
			_exit(0);
		}
		close(c);
	}
}

static int memtest(long mib, long interval_ms, long iters)
{
	size_t pages = (size_t)mib * 256, words = 4096 / 8;
	uint64_t *buf = malloc(pages * 4096);
	if (!buf) {
		printf("memtest: cannot allocate %ld MiB\n", mib);
		return 1;
	}
	for (uint64_t it = 0; iters < 0 || (long)it < iters; it++) {
		uint64_t sum = 0;
		for (size_t p = 0; p < pages; p++) {
			uint64_t *w = buf + p * words;
			if (it > 0 && (w[0] != pattern(p, it - 1) || w[words - 1] != w[0])) {
				printf("memtest CORRUPT iter=%llu page=%zu\n", (unsigned long long)it, p);
				return 1;
			}
			w[0] = w[words - 1] = pattern(p, it);
			sum += w[0];
		}
		printf("memtest iter=%llu mib=%ld sum=%016llx ok\n", (unsigned long long)it, mib,
		       (unsigned long long)sum);
		sleep_ms(interval_ms);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: gwtest env|whoami|cwd|crash|exit N|sleep MS|echo ARGS|cat|\n"
			"              counter [MS [N]]|heartbeat [N]|memtest MIB [MS [N]]|\n"
			"              soak [MIB [MS]]|soakcheck|serve PORT 0|1|secret SEED [MIB]|\n"
			"              hostile [MIB]\n");
}

/* An agent frame header as the link encodes it (include/godwit/frame.h): big-endian magic
 * "GWA1", type, chan, seq, ack, len. */
static void frame_hdr(unsigned char *h, unsigned type, unsigned chan, uint32_t seq, uint32_t len)
{
	uint32_t w[5] = { 0x47574131u, (type << 16) | chan, seq, 0, len };
	for (int i = 0; i < 5; i++)
		for (int b = 0; b < 4; b++)
			h[i * 4 + b] = (unsigned char)(w[i] >> (24 - 8 * b));
}

/* all of buf into fd, waiting while it is full (the agent's port is non-blocking); 0 bytes
 * more within 5 s: give up; returns what was not written */
static size_t put(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (fd >= 0 && len > 0) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (n < 0 && errno == EAGAIN && poll(&pfd, 1, 5000) <= 0)
			break;
	}
	return len;
}

/* hostile MIB: what root in a guest can do to the host through its own guest: take the agent's
 * virtio port from PID 1 (pidfd_getfd) and write garbage, a frame header claiming 4 GiB, frames
 * replaying sequence numbers, an unknown type and a bad magic into it; then flood its stdout
 * with MIB MiB and the serial console with MIB MiB; then stays. */
static int hostile(long mib)
{
	int pidfd = (int)syscall(434 /* pidfd_open */, 1, 0), port = -1;
	for (int fd = 0; fd < 256 && port < 0 && pidfd >= 0; fd++) {
		char p[64], t[256];
		snprintf(p, sizeof(p), "/proc/1/fd/%d", fd);
		ssize_t n = readlink(p, t, sizeof(t) - 1);
		if (n <= 0)
			continue;
		t[n] = '\0';
		if (strstr(t, "vport"))
			port = (int)syscall(438 /* pidfd_getfd */, pidfd, fd, 0);
	}
	printf("hostile: agent port %s\n", port >= 0 ? "taken" : "not found");
	sleep_ms(1000); /* that line reaches the log before the garbage does */
	unsigned char buf[65536], h[20];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	size_t lost = 0;
	for (int i = 0; i < 16; i++)
		lost += put(port, buf, sizeof(buf));
	frame_hdr(h, 6 /* STDOUT */, 0, 1, 0xffffffffu);
	lost += put(port, h, sizeof(h));
	for (uint32_t i = 0; i < 200; i++) {
		frame_hdr(h, 6, 0, 1 + i % 3, 9);
		lost += put(port, h, sizeof(h));
		lost += put(port, "replayed\n", 9);
	}
	frame_hdr(h, 99, 7, 5, 0);
	lost += put(port, h, sizeof(h));
	memset(h, 'Z', 4);
	lost += put(port, h, sizeof(h));
	printf("hostile: frames written (%zu bytes not taken)\n", lost);
	/* stdout: lines of 100 bytes */
	char line[101];
	memset(line, 'o', 99);
	line[99] = '\n';
	line[100] = '\0';
	for (long i = 0; i < mib * 10486; i++)
		fputs(line, stdout);
	fflush(stdout);
	printf("hostile: stdout flooded\n");
	int con = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
	memset(buf, 'c', sizeof(buf));
	for (long i = 0; con >= 0 && i < mib * 16; i++)
		lost += put(con, buf, sizeof(buf));
	printf("hostile: console %s\n", con >= 0 ? "flooded" : "not opened");
	for (;;) /* stays, for the host to deal with */
		sleep_ms(1000);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argc > 1 ? argv[1] : "";
	long a2 = argc > 2 ? atol(argv[2]) : -1, a3 = argc > 3 ? atol(argv[3]) : -1;
	long a4 = argc > 4 ? atol(argv[4]) : -1;
	if (!strcmp(cmd, "env")) {
		for (char **e = environ; *e; e++)
			printf("%s\n", *e);
	} else if (!strcmp(cmd, "whoami")) {
		printf("%u:%u\n", (unsigned)getuid(), (unsigned)getgid());
	} else if (!strcmp(cmd, "cwd")) {
		char buf[4096];
		printf("%s\n", getcwd(buf, sizeof(buf)) ? buf : "?");
	} else if (!strcmp(cmd, "crash")) {
		fflush(stdout);
		raise(SIGSEGV);
		return 99;
	} else if (!strcmp(cmd, "exit")) {
		return (int)(a2 < 0 ? 0 : a2);
	} else if (!strcmp(cmd, "sleep")) {
		sleep_ms(a2 < 0 ? 1000 : a2);
	} else if (!strcmp(cmd, "echo")) {
		for (int i = 2; i < argc; i++)
			printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
	} else if (!strcmp(cmd, "cat")) {
		char buf[4096];
		ssize_t n;
		while ((n = read(0, buf, sizeof(buf))) > 0)
			if (write(1, buf, (size_t)n) != n)
				return 1;
	} else if (!strcmp(cmd, "counter")) {
		for (long i = 0; a3 < 0 || i < a3; i++) {
			printf("counter %ld\n", i);
			sleep_ms(a2 > 0 ? a2 : 100);
		}
	} else if (!strcmp(cmd, "heartbeat")) {
		uint64_t t0 = now_ns();
		for (long i = 0; a2 < 0 || i < a2; i++) {
			printf("hb %ld %llu\n", i, (unsigned long long)(now_ns() - t0) / 1000);
			sleep_ms(1);
		}
	} else if (!strcmp(cmd, "memtest")) {
		return memtest(a2 > 0 ? a2 : 16, a3 > 0 ? a3 : 100, a4);
	} else if (!strcmp(cmd, "soak")) {
		return soak_main(a2 > 0 ? a2 : 64, a3 > 0 ? a3 : 1000);
	} else if (!strcmp(cmd, "soakcheck")) {
		return soakcheck_main();
	} else if (!strcmp(cmd, "secret") && argc > 2) {
		return secret(argv[2], a3 > 0 ? a3 : 16);
	} else if (!strcmp(cmd, "hostile")) {
		return hostile(a2 > 0 ? a2 : 2);
	} else if (!strcmp(cmd, "serve")) {
		return serve(a2 > 0 ? a2 : 5000, a3 > 0);
	} else {
		usage();
		return 2;
	}
	return 0;
}
