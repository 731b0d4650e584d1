/* Unit tests for QEMU's channels' plumbing (src/shim/mig_relay.c, mig_accept_each in
 * src/shim/mig_recover.c): a relay carries every byte both ways, in order, passes each end's
 * EOF on and ends by itself once both ends closed; stopping it mid-flow ends both ends;
 * several connections are admitted in one wait, each handed on at once, junk turned away. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "godwit/migproto.h"
#include "godwit/util.h"
#include "../../src/shim/shim.h"
#include "../../src/shim/migrate.h"
#include "admit_testlib.h"

#define BIG (3 * 1024 * 1024 + 17)

/* write all of buf to fd while reading what comes back on rfd into out (both ways at once,
 * so neither side's buffers can stall the other) */
static void pump(int wfd, const uint8_t *buf, size_t len, int rfd, uint8_t *out, size_t want)
{
	size_t w = 0, r = 0;
	while (w < len || r < want) {
		if (w < len) {
			ssize_t n = send(wfd, buf + w, len - w > 65536 ? 65536 : len - w,
					 MSG_DONTWAIT);
			if (n > 0)
				w += (size_t)n;
			else
				assert_true(errno == EAGAIN);
			if (w == len)
				shutdown(wfd, SHUT_WR);
		}
		if (r < want) {
			ssize_t n = recv(rfd, out + r, want - r, MSG_DONTWAIT);
			if (n > 0)
				r += (size_t)n;
			else
				assert_true(n < 0 && errno == EAGAIN);
		}
	}
}

/* two socket pairs, a[1] and b[1] relayed: the test talks on a[0] and b[0] */
static struct mig_relay *relay_between(int a[2], int b[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
	struct mig_relay *r;
	struct gw_err err = { 0 };
	assert_int_equal(mig_relay_start(a[1], b[1], &r, &err), 0);
	return r;
}

static void test_both_ways(void **state)
{
	(void)state;
	int a[2], b[2];
	struct mig_relay *r = relay_between(a, b);
	uint8_t *x = malloc(BIG), *y = malloc(BIG), *got = malloc(BIG);
	for (size_t i = 0; i < BIG; i++) {
		x[i] = (uint8_t)(i * 7 + 3);
		y[i] = (uint8_t)(i * 13 + 1);
	}
	/* a -> b, then b -> a; each end's EOF reaches the other */
	pump(a[0], x, BIG, b[0], got, BIG);
	assert_memory_equal(got, x, BIG);
	char c;
	assert_int_equal(read(b[0], &c, 1), 0);
	pump(b[0], y, BIG, a[0], got, BIG);
	assert_memory_equal(got, y, BIG);
	assert_int_equal(read(a[0], &c, 1), 0);
	mig_relay_stop(r);
	close(a[0]);
	close(b[0]);
	free(x);
	free(y);
	free(got);
}

static void test_stop_mid_flow(void **state)
{
	(void)state;
	int a[2], b[2];
	struct mig_relay *r = relay_between(a, b);
	assert_int_equal(write(a[0], "hello", 5), 5);
	char buf[8];
	assert_int_equal(read(b[0], buf, 5), 5);
	assert_memory_equal(buf, "hello", 5);
	mig_relay_stop(r); /* nobody closed: the stop ends it, and both ends see the end */
	assert_int_equal(read(b[0], buf, 1), 0);
	assert_int_equal(read(a[0], buf, 1), 0);
	close(a[0]);
	close(b[0]);
}

struct taken {
	int n, fd[4];
};

static int take(void *arg, struct mig_conn *cc, struct gw_err *err)
{
	(void)err;
	struct taken *t = arg;
	t->fd[t->n++] = cc->fd;
	return 0;
}

static struct container ct;

static void test_admit_several(void **state)
{
	(void)state;
	memset(&ct, 0, sizeof(ct));
	ct.signal_fd = -1;
	struct sockaddr_in a;
	int lfd = listener(&a);
	int junk = dial(&a), c1 = dial_token(&a, MIG_CONN_DATA, "tok");
	int wrong = dial_token(&a, MIG_CONN_DATA, "x");
	int c2 = dial_token(&a, MIG_CONN_DATA, "tok"), c3 = dial_token(&a, MIG_CONN_DATA, "tok");
	assert_int_equal(write(junk, "junk junk junk junk", 19), 19);
	struct taken t = { 0 };
	struct gw_err err = { 0 };
	assert_int_equal(mig_accept_each(&ct, lfd, MIG_CONN_DATA, "tok", 3000, 3, take, &t, &err),
			 0);
	assert_int_equal(t.n, 3);
	/* each admitted one is one of the good clients' (a byte from each arrives somewhere) */
	int good[3] = { c1, c2, c3 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(write(good[i], "g", 1), 1);
	for (int i = 0; i < 3; i++) {
		char c;
		assert_int_equal(read(t.fd[i], &c, 1), 1);
		assert_int_equal(c, 'g');
		close(t.fd[i]);
	}
	char c;
	ssize_t n = read(wrong, &c, 1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	/* a fourth that never comes: the wait ends with the reason */
	t.n = 0;
	assert_int_equal(mig_accept_each(&ct, lfd, MIG_CONN_DATA, "tok", 200, 1, take, &t, &err),
			 -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not open its data connection"));
	close(junk);
	close(wrong);
	for (int i = 0; i < 3; i++)
		close(good[i]);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_ways),
		cmocka_unit_test(test_stop_mid_flow),
		cmocka_unit_test(test_admit_several),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
