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

static int listener(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t al = sizeof(*a);
	*a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &al), 0);
	return fd;
}

static int dial(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)a, sizeof(*a)), 0);
	return fd;
}

/* a client that says its kind and token at once */
static int dial_token(const struct sockaddr_in *a, const char *token)
{
	int fd = dial(a);
	struct mig_conn c;
	struct gw_err err = { 0 };
	mig_conn_init(&c, fd, 5000);
	json_object *o = json_object_new_object();
	json_object_object_add(o, MIG_CONN_CONTROL, json_object_new_string(token));
	assert_int_equal(mig_send_json(&c, MIG_CONFIG, o, &err), 0);
	json_object_put(o);
	return fd;
}

static struct container ct;

static void test_silent_ones_first(void **state)
{
	(void)state;
	memset(&ct, 0, sizeof(ct));
	ct.signal_fd = -1;
	struct sockaddr_in a;
	int lfd = listener(&a), silent[6], junk = dial(&a), wrong = dial_token(&a, "not-it");
	for (int i = 0; i < 6; i++)
		silent[i] = dial(&a);
	assert_int_equal(write(junk, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	int good = dial_token(&a, "0123456789abcdef");
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
	int lfd = listener(&a), silent = dial(&a), wrong = dial_token(&a, "not-it");
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
