/* Unit tests for the QMP client (src/hv/qmp.c): a fake QEMU monitor runs in a thread on the
 * other end of a socketpair (or a unix socket) and plays one scripted exchange per test;
 * qmp_parse_line() is checked on its own for the odd lines QEMU (or an attacker) may send. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "fake_monitor.h"
#include "godwit/qmp.h"
#include "godwit/util.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}," \
		 " \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\n"

struct fake {
	int fd;			/* server end */
	void (*script)(struct fake *f);
	pthread_t th;
	char seen[8][64];	/* command names the server received, in order */
	int nseen;
	int passed_fd;		/* fd received with SCM_RIGHTS, or -1 */
	char unix_path[108];	/* for the unix-socket test */
};

static void srv_send(struct fake *f, const char *s)
{
	gw_write_full(f->fd, s, strlen(s));
}

/* Read one command line (byte by byte, keeping any SCM_RIGHTS fd) and note its name. */
static json_object *srv_read_cmd(struct fake *f)
{
	char line[4096];
	if (!fm_read_line(f->fd, line, sizeof(line), &f->passed_fd))
		return NULL;
	json_object *o = json_tokener_parse(line);
	json_object *ex;
	if (o && json_object_object_get_ex(o, "execute", &ex) && f->nseen < 8)
		snprintf(f->seen[f->nseen++], 64, "%s", json_object_get_string(ex));
	return o;
}

/* Reply to cmd with body (a JSON fragment such as "\"return\": {}"), echoing its id. */
static void srv_reply(struct fake *f, json_object *cmd, const char *body)
{
	json_object *id = NULL;
	json_object_object_get_ex(cmd, "id", &id);
	char buf[8192];
	snprintf(buf, sizeof(buf), "{%s, \"id\": %s}\n", body,
		 id ? json_object_to_json_string(id) : "null");
	srv_send(f, buf);
}

static void srv_handshake(struct fake *f)
{
	srv_send(f, GREETING);
	json_object *c = srv_read_cmd(f);
	if (c)
		srv_reply(f, c, "\"return\": {}");
	json_object_put(c);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	f->script(f);
	close(f->fd);
	return NULL;
}

/* Start the fake and open a client on the other end of a socketpair. */
static struct qmp *fake_start(struct fake *f, void (*script)(struct fake *f), int *rc,
			      struct gw_err *err)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(f, 0, sizeof(*f));
	f->fd = sv[1];
	f->passed_fd = -1;
	f->script = script;
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	struct qmp *q = NULL;
	*rc = qmp_open_fd(sv[0], 2000, &q, err);
	return q;
}

static void fake_join(struct fake *f)
{
	pthread_join(f->th, NULL);
}

static void script_status(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	srv_send(f, "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n");
	srv_send(f, "{\"return\": 42, \"id\": \"not-ours\"}\n");
	srv_send(f, "{\"event\": \"STOP\", \"data\": {}}\n");
	srv_reply(f, c, "\"return\": {\"status\": \"running\", \"running\": true}");
	json_object_put(c);
	/* Not read yet when execute returns: must stay queued behind the reply. */
	srv_send(f, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true}}\n");
	c = srv_read_cmd(f); /* wait for the client to close */
	json_object_put(c);
}

static void test_handshake_return_and_events(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_status, &rc, &err);
	assert_int_equal(rc, 0);
	assert_non_null(q);
	assert_string_equal(f.seen[0], "qmp_capabilities");
	json_object *ver;
	assert_true(json_object_object_get_ex(qmp_greeting(q), "QMP", &ver));

	json_object *ret = NULL;
	rc = qmp_execute(q, "query-status", NULL, &ret, 2000, &err);
	assert_int_equal(rc, 0);
	json_object *st;
	assert_true(json_object_object_get_ex(ret, "status", &st));
	assert_string_equal(json_object_get_string(st), "running");
	json_object_put(ret);
	assert_string_equal(f.seen[1], "query-status");

	json_object *ev = qmp_next_event(q), *name;
	assert_non_null(ev);
	json_object_object_get_ex(ev, "event", &name);
	assert_string_equal(json_object_get_string(name), "RESUME");
	json_object_put(ev);
	ev = qmp_next_event(q);
	assert_non_null(ev);
	json_object_object_get_ex(ev, "event", &name);
	assert_string_equal(json_object_get_string(name), "STOP");
	json_object_put(ev);

	assert_int_equal(qmp_wait_event(q, "SHUTDOWN", 2000, &ev, &err), 0);
	json_object_put(ev);
	assert_null(qmp_next_event(q));
	assert_int_equal(qmp_events_dropped(q), 0);
	qmp_close(q);
	fake_join(&f);
}

static void script_error(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	srv_reply(f, c, "\"error\": {\"class\": \"CommandNotFound\", "
			"\"desc\": \"The command query-nope has not been found\"}");
	json_object_put(c);
	c = srv_read_cmd(f);
	json_object_put(c);
}

static void test_error_reply(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_error, &rc, &err);
	assert_int_equal(rc, 0);
	json_object *ret = (json_object *)1;
	rc = qmp_execute(q, "query-nope", NULL, &ret, 2000, &err);
	assert_int_equal(rc, -EREMOTEIO);
	assert_null(ret);
	assert_string_equal(err.msg,
			    "query-nope: CommandNotFound: The command query-nope has not been found");
	qmp_close(q);
	fake_join(&f);
}

static void script_late(struct fake *f)
{
	srv_handshake(f);
	json_object *c1 = srv_read_cmd(f); /* not answered in time */
	json_object *c2 = srv_read_cmd(f);
	srv_reply(f, c1, "\"return\": \"late\"");
	srv_reply(f, c2, "\"return\": \"second\"");
	json_object_put(c1);
	json_object_put(c2);
	json_object_put(srv_read_cmd(f));
}

static void test_timeout_then_late_reply_dropped(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_late, &rc, &err);
	assert_int_equal(rc, 0);
	int64_t t0 = gw_now_mono_ns();
	rc = qmp_execute(q, "first", NULL, NULL, 100, &err);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(gw_now_mono_ns() - t0 < 1000000000LL);
	assert_non_null(strstr(err.msg, "first"));
	json_object *ret = NULL;
	rc = qmp_execute(q, "second", NULL, &ret, 2000, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(json_object_get_string(ret), "second");
	json_object_put(ret);
	qmp_close(q);
	fake_join(&f);
}

/* A slow command: the reply comes 150 ms late, so the client waits in the hook. */
static void script_slow(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	poll(NULL, 0, 150);
	srv_reply(f, c, "\"return\": \"slow\"");
	json_object_put(c);
	json_object_put(srv_read_cmd(f)); /* "never": not answered */
	json_object_put(srv_read_cmd(f)); /* until the client closes */
}

struct hook_seen {
	int calls, fd;
	int64_t waited_ns;
};

/* What the shim does in its hook (mig_await): wait for the monitor, meanwhile free to serve
 * other work; here it only counts and checks it is given the monitor's fd. */
static void count_hook(void *arg, int fd, int ms)
{
	struct hook_seen *h = arg;
	h->calls++;
	h->fd = fd;
	int64_t t0 = gw_now_mono_ns();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	poll(&p, 1, ms < 20 ? ms : 20); /* in slices, like a caller with other work */
	h->waited_ns += gw_now_mono_ns() - t0;
}

static void test_wait_hook(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_slow, &rc, &err);
	assert_int_equal(rc, 0);
	struct hook_seen h = { 0 };
	qmp_set_wait(q, count_hook, &h);
	json_object *ret = NULL;
	rc = qmp_execute(q, "slow", NULL, &ret, 2000, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(json_object_get_string(ret), "slow");
	json_object_put(ret);
	/* the 150 ms went by in the hook, in several calls, each handed the monitor */
	assert_true(h.calls >= 3);
	assert_int_equal(h.fd, qmp_fd(q));
	assert_true(h.waited_ns >= 100000000LL);
	/* and off again: a timeout still ends a wait without it */
	qmp_set_wait(q, NULL, NULL);
	int before = h.calls;
	rc = qmp_execute(q, "never", NULL, NULL, 50, &err);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_int_equal(h.calls, before);
	qmp_close(q);
	fake_join(&f);
}

static void script_huge(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	json_object_put(c);
	size_t n = QMP_LINE_MAX + 4096;
	char *big = malloc(n);
	memset(big, 'a', n);
	gw_write_full(f->fd, "{\"return\": \"", 12);
	gw_write_full(f->fd, big, n);
	free(big);
	json_object_put(srv_read_cmd(f));
}

static void test_oversized_line(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_huge, &rc, &err);
	assert_int_equal(rc, 0);
	rc = qmp_execute(q, "query-status", NULL, NULL, 5000, &err);
	assert_int_equal(rc, -EMSGSIZE);
	assert_non_null(strstr(err.msg, "longer than"));
	/* The stream is no longer trusted: later calls fail the same way, at once. */
	gw_err_clear(&err);
	assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, 5000, &err), -EMSGSIZE);
	assert_int_equal(qmp_pump(q, &err), -EMSGSIZE);
	qmp_close(q);
	fake_join(&f);
}

static void script_garbage(struct fake *f)
{
	srv_handshake(f);
	json_object_put(srv_read_cmd(f));
	srv_send(f, "{\"return\": {}, \"id\": \"godwit-2\"} garbage\n");
	json_object_put(srv_read_cmd(f));
}

static void test_garbage(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_garbage, &rc, &err);
	assert_int_equal(rc, 0);
	rc = qmp_execute(q, "query-status", NULL, NULL, 2000, &err);
	assert_int_equal(rc, -EBADMSG);
	assert_non_null(strstr(err.msg, "qmp query-status: qmp: "));
	qmp_close(q);
	fake_join(&f);
}

static void script_close(struct fake *f)
{
	srv_handshake(f);
	json_object_put(srv_read_cmd(f));
}

static void test_peer_close(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_close, &rc, &err);
	assert_int_equal(rc, 0);
	rc = qmp_execute(q, "quit", NULL, NULL, 2000, &err);
	assert_int_equal(rc, -EPIPE);
	assert_non_null(strstr(err.msg, "closed"));
	assert_int_equal(qmp_pump(q, &err), -EPIPE);
	qmp_close(q);
	fake_join(&f);
}

static void script_bad_greeting(struct fake *f)
{
	srv_send(f, "{\"return\": {}}\n");
}

static void test_bad_greeting(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_bad_greeting, &rc, &err);
	assert_true(rc < 0);
	assert_null(q);
	assert_non_null(strstr(err.msg, "qmp handshake"));
	fake_join(&f);
}

static void script_getfd(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	if (f->passed_fd >= 0) {
		gw_write_full(f->passed_fd, "via-scm", 7);
		close(f->passed_fd);
	}
	srv_reply(f, c, "\"return\": {}");
	json_object_put(c);
	json_object_put(srv_read_cmd(f));
}

static void test_fd_passing(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_getfd, &rc, &err);
	assert_int_equal(rc, 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("migrate"));
	rc = qmp_execute_with_fd(q, "getfd", args, p[1], NULL, 2000, &err);
	json_object_put(args);
	assert_int_equal(rc, 0);
	close(p[1]);
	char buf[16] = { 0 };
	assert_int_equal(gw_read_full(p[0], buf, 7), 0);
	assert_string_equal(buf, "via-scm");
	close(p[0]);
	assert_string_equal(f.seen[1], "getfd");
	assert_int_equal(qmp_execute_with_fd(q, "getfd", NULL, -1, NULL, 100, &err), -EBADF);
	qmp_close(q);
	fake_join(&f);
}

static void script_flood(struct fake *f)
{
	srv_handshake(f);
	json_object *c = srv_read_cmd(f);
	char buf[128];
	for (int i = 0; i < 1100; i++) {
		snprintf(buf, sizeof(buf), "{\"event\": \"E%d\", \"data\": {}}\n", i);
		srv_send(f, buf);
	}
	srv_reply(f, c, "\"return\": {}");
	json_object_put(c);
	json_object_put(srv_read_cmd(f));
}

static void test_event_flood(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_flood, &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "cont", NULL, NULL, 5000, &err), 0);
	assert_int_equal(qmp_events_dropped(q), 1100 - 1024);
	json_object *ev = qmp_next_event(q), *name;
	json_object_object_get_ex(ev, "event", &name);
	assert_string_equal(json_object_get_string(name), "E76");
	json_object_put(ev);
	int n = 1;
	while ((ev = qmp_next_event(q)) != NULL) {
		json_object_put(ev);
		n++;
	}
	assert_int_equal(n, 1024);
	qmp_close(q);
	fake_join(&f);
}

static void script_wait_event(struct fake *f)
{
	srv_handshake(f);
	srv_send(f, "{\"event\": \"A\", \"data\": {}}\n");
	srv_send(f, "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}\n");
	srv_send(f, "{\"event\": \"B\"}\n");
	json_object_put(srv_read_cmd(f));
}

static void test_wait_event_keeps_others(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	int rc;
	struct qmp *q = fake_start(&f, script_wait_event, &rc, &err);
	assert_int_equal(rc, 0);
	json_object *ev = NULL, *name;
	assert_int_equal(qmp_wait_event(q, "MIGRATION", 2000, &ev, &err), 0);
	json_object_put(ev);
	assert_int_equal(qmp_wait_event(q, "B", 2000, NULL, &err), 0);
	ev = qmp_next_event(q);
	assert_non_null(ev);
	json_object_object_get_ex(ev, "event", &name);
	assert_string_equal(json_object_get_string(name), "A");
	json_object_put(ev);
	assert_int_equal(qmp_wait_event(q, "NEVER", 50, NULL, &err), -ETIMEDOUT);
	qmp_close(q);
	fake_join(&f);
}

static void *unix_server(void *arg)
{
	struct fake *f = arg;
	int c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
	close(f->fd);
	f->fd = c;
	srv_handshake(f);
	json_object_put(srv_read_cmd(f));
	close(c);
	return NULL;
}

static void test_connect_unix_path(void **state)
{
	(void)state;
	struct fake f = { .passed_fd = -1 };
	snprintf(f.unix_path, sizeof(f.unix_path), "/tmp/godwit-test-qmp-%d.sock", getpid());
	unlink(f.unix_path);
	struct gw_err err = { 0 };
	struct qmp *q = NULL;
	/* Nobody listening: retries until the timeout, then a clear error. */
	assert_int_equal(qmp_connect(f.unix_path, 100, &q, &err), -ENOENT);
	assert_non_null(strstr(err.msg, f.unix_path));

	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, f.unix_path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	f.fd = l;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, unix_server, &f), 0);
	assert_int_equal(qmp_connect(f.unix_path, 2000, &q, &err), 0);
	assert_true(qmp_fd(q) >= 0);
	qmp_close(q);
	pthread_join(th, NULL);
	unlink(f.unix_path);
	assert_string_equal(f.seen[0], "qmp_capabilities");
}

static int parse(const char *s, struct gw_err *err)
{
	json_object *m = NULL;
	int r = qmp_parse_line(s, strlen(s), &m, err);
	if (r > 0)
		assert_non_null(m);
	else
		assert_null(m);
	json_object_put(m);
	return r;
}

static void test_parse_line(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	assert_int_equal(parse(GREETING, &err), QMP_MSG_GREETING);
	assert_int_equal(parse("{\"return\": {}}\r\n", &err), QMP_MSG_RETURN);
	assert_int_equal(parse("{\"return\": [1, 2]}", &err), QMP_MSG_RETURN);
	assert_int_equal(parse("{\"error\": {\"class\": \"X\", \"desc\": \"y\"}}", &err),
			 QMP_MSG_ERROR);
	assert_int_equal(parse("{\"event\": \"STOP\", \"timestamp\": {}}", &err), QMP_MSG_EVENT);

	assert_int_equal(parse("{\"error\": {\"class\": \"X\"}}", &err), -EBADMSG);
	assert_int_equal(parse("{\"error\": {\"class\": 1, \"desc\": \"y\"}}", &err), -EBADMSG);
	assert_int_equal(parse("{\"error\": \"boom\"}", &err), -EBADMSG);
	assert_int_equal(parse("{\"event\": 7}", &err), -EBADMSG);
	assert_int_equal(parse("{\"event\": \"X\", \"data\": [1]}", &err), -EBADMSG);
	assert_int_equal(parse("{\"QMP\": 1}", &err), -EBADMSG);
	assert_int_equal(parse("{\"hello\": 1}", &err), -EBADMSG);
	assert_int_equal(parse("[1, 2]", &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not a JSON object"));
	assert_int_equal(parse("\"return\"", &err), -EBADMSG);
	assert_int_equal(parse("{\"return\": {}} {}", &err), -EBADMSG);
	assert_int_equal(parse("{\"return\": ", &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(parse("{\"return\": 1,}", &err), -EBADMSG);
	assert_int_equal(parse("{\"return\": {}}}", &err), -EBADMSG);
	assert_int_equal(parse("", &err), -EBADMSG);
	assert_int_equal(parse("   \n", &err), -EBADMSG);
	assert_int_equal(parse("{\"return\": \"\xff\xfe\"}", &err), -EBADMSG);

	assert_int_equal(qmp_parse_line("{\"return\": 1}\0x", 16, &(json_object *){ NULL }, &err),
			 -EBADMSG);

	char deep[400];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	char wrapped[512];
	snprintf(wrapped, sizeof(wrapped), "{\"return\": %s}", deep);
	assert_int_equal(parse(wrapped, &err), -EBADMSG);

	json_object *m = (json_object *)1;
	assert_int_equal(qmp_parse_line("{}", (size_t)QMP_LINE_MAX + 1, &m, &err), -EMSGSIZE);
	assert_null(m);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* the fake writes to a client that gave up */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_return_and_events),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_timeout_then_late_reply_dropped),
		cmocka_unit_test(test_wait_hook),
		cmocka_unit_test(test_oversized_line),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_peer_close),
		cmocka_unit_test(test_bad_greeting),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_event_flood),
		cmocka_unit_test(test_wait_event_keeps_others),
		cmocka_unit_test(test_connect_unix_path),
		cmocka_unit_test(test_parse_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
