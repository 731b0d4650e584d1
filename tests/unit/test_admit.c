/* Unit tests for the admission of a move's second connections (mig_accept_control,
 * src/shim/mig_recover.c): silent connections queued ahead of the source's do not hold it up
 * (before, each held the listener for 5 s in turn, so six of them outlasted a 3 s wait); a
 * wrong token and junk are turned away; with nobody right, the wait ends with a clear error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "godwit/migproto.h"
#include "godwit/util.h"
#include "../../src/shim/shim.h"
#include "../../src/shim/migrate.h"
#include "admit_testlib.h"

static struct container ct;

static void test_silent_ones_first(void **state)
{
	(void)state;
	memset(&ct, 0, sizeof(ct));
	ct.signal_fd = -1;
	struct sockaddr_in a;
	int lfd = listener(&a), silent[6], junk = dial(&a);
	int wrong = dial_token(&a, MIG_CONN_CONTROL, "not-it");
	for (int i = 0; i < 6; i++)
		silent[i] = dial(&a);
	assert_int_equal(write(junk, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	int good = dial_token(&a, MIG_CONN_CONTROL, "0123456789abcdef");
	struct mig_conn cc;
	struct gw_err err = { 0 };
	int64_t t0 = gw_now_mono_ns();
	assert_int_equal(mig_accept_control(&ct, lfd, MIG_CONN_CONTROL, "0123456789abcdef", 3000,
					    &cc, &err), 0);
	int64_t ms = (gw_now_mono_ns() - t0) / 1000000;
	assert_true(ms < 1000);
	/* the admitted one is the good client's: what it sends arrives */
	assert_true(cc.fd >= 0);
	assert_int_equal(write(good, "x", 1), 1);
	char c;
	assert_int_equal(read(cc.fd, &c, 1), 1);
	/* the junk and the wrong token were turned away (their peers see the close, or the reset
	 * of a close with their bytes unread) */
	ssize_t n = read(junk, &c, 1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	n = read(wrong, &c, 1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(cc.fd);
	for (int i = 0; i < 6; i++)
		close(silent[i]);
	close(junk);
	close(wrong);
	close(good);
	close(lfd);
}

static void test_nobody_right(void **state)
{
	(void)state;
	memset(&ct, 0, sizeof(ct));
	ct.signal_fd = -1;
	struct sockaddr_in a;
	int lfd = listener(&a), silent = dial(&a);
	int wrong = dial_token(&a, MIG_CONN_CONTROL, "not-it");
	struct mig_conn cc;
	struct gw_err err = { 0 };
	assert_int_equal(mig_accept_control(&ct, lfd, MIG_CONN_CONTROL, "0123456789abcdef", 300,
					    &cc, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not open its control connection"));
	assert_int_equal(cc.fd, -1);
	close(silent);
	close(wrong);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_ones_first),
		cmocka_unit_test(test_nobody_right),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
