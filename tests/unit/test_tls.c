/* Unit tests for a move's own TLS (src/common/tls.c) and its use by the migration protocol's
 * framing (mig_conn's io hook, src/migproto/protocol.c), over a socket pair, with two CAs made
 * by tests/lib/tlscerts.sh (openssl): messages cross intact; a client from another CA, a
 * server whose certificate names another host, and a peer without TLS are refused with the
 * reason; the CLI's checks of a TLS directory and of loopback addresses. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "godwit/migproto.h"
#include "godwit/tls.h"
#include "../../src/cli/cli.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gw-test-tls.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), ". tests/lib/tlscerts.sh && tls_certs %s/a 'CA A' "
		 "IP:127.0.0.1,DNS:localhost && tls_certs %s/b 'CA B' IP:127.0.0.1", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct side {
	const char *ca;		/* "a" or "b" */
	const char *host;	/* client: the name it wants; NULL: the server */
	int fd;
	int r;
	struct gw_err err;
	void *ssl;
};

static void *shake(void *arg)
{
	struct side *s = arg;
	char d[128];
	snprintf(d, sizeof(d), "%s/%s", dir, s->ca);
	struct ssl_ctx_st *ctx = NULL;
	s->r = gw_tls_ctx_new(d, s->host == NULL, &ctx, &s->err);
	if (s->r == 0)
		s->r = gw_tls_handshake(ctx, s->fd, s->host, NULL, NULL, 5000,
					(struct ssl_st **)&s->ssl, &s->err);
	/* a failed side hangs up, as a shim does */
	if (s->r < 0)
		shutdown(s->fd, SHUT_RDWR);
	gw_tls_ctx_free(ctx);
	return NULL;
}

/* a handshake between a server of CA sca and a client of CA cca that wants host */
static void pair(struct side *srv, struct side *cli, const char *sca, const char *cca,
		 const char *host)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	*srv = (struct side){ .ca = sca, .fd = sv[0] };
	*cli = (struct side){ .ca = cca, .host = host, .fd = sv[1] };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, shake, srv), 0);
	shake(cli);
	pthread_join(t, NULL);
}

static void unpair(struct side *srv, struct side *cli)
{
	gw_tls_free(srv->ssl);
	gw_tls_free(cli->ssl);
	close(srv->fd);
	close(cli->fd);
}

static ssize_t io(void *ssl, void *buf, size_t len, int writing, short *events)
{
	return gw_tls_io(ssl, buf, len, writing, events);
}

static void *send_big(void *arg)
{
	struct mig_conn *c = arg;
	json_object *o = json_object_new_object();
	char *big = malloc(300000);
	memset(big, 'x', 299999);
	big[299999] = '\0';
	json_object_object_add(o, "blob", json_object_new_string(big));
	free(big);
	mig_send_json(c, MIG_CONFIG, o, NULL);
	json_object_put(o);
	return NULL;
}

static void test_messages_cross(void **state)
{
	(void)state;
	struct side s, c;
	pair(&s, &c, "a", "a", "127.0.0.1");
	assert_int_equal(s.r, 0);
	assert_int_equal(c.r, 0);
	char peer[256];
	gw_tls_peer_name(s.ssl, peer, sizeof(peer));
	assert_non_null(strstr(peer, "godwit client"));
	struct mig_conn a, b;
	mig_conn_init(&a, c.fd, 5000);
	mig_conn_init(&b, s.fd, 5000);
	a.io = b.io = io;
	a.io_arg = c.ssl;
	b.io_arg = s.ssl;
	/* a message larger than a TLS record (16 KiB), written while the peer reads */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, send_big, &a), 0);
	json_object *got = NULL, *v;
	struct gw_err err = { 0 };
	assert_int_equal(mig_recv_json(&b, MIG_CONFIG, &got, &err), 0);
	pthread_join(t, NULL);
	assert_true(json_object_object_get_ex(got, "blob", &v));
	assert_int_equal(json_object_get_string_len(v), 299999);
	json_object_put(got);
	/* and back, then the peer's close reads as the end */
	json_object *o = json_object_new_object();
	assert_int_equal(mig_send_json(&b, MIG_DONE, o, &err), 0);
	json_object_put(o);
	assert_int_equal(mig_recv_json(&a, MIG_DONE, &got, &err), 0);
	json_object_put(got);
	shutdown(s.fd, SHUT_RDWR);
	assert_int_equal(mig_recv_json(&a, MIG_DONE, &got, &err), -ECONNRESET);
	unpair(&s, &c);
}

static void test_refusals(void **state)
{
	(void)state;
	struct side s, c;
	/* a client whose certificate comes from another CA (which also does not know ours) */
	pair(&s, &c, "a", "b", "127.0.0.1");
	assert_true(s.r < 0 && c.r < 0);
	assert_non_null(strstr(c.err.msg, "certificate"));
	unpair(&s, &c);
	/* the server's certificate does not name the host the client wanted */
	pair(&s, &c, "a", "a", "10.9.9.9");
	assert_true(c.r < 0);
	assert_non_null(strstr(c.err.msg, "refused"));
	unpair(&s, &c);
	pair(&s, &c, "a", "a", "localhost");
	assert_int_equal(c.r, 0);
	unpair(&s, &c);
	/* a peer without TLS: what a plain source sends first */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s = (struct side){ .ca = "a", .fd = sv[0] };
	struct mig_conn plain;
	mig_conn_init(&plain, sv[1], 2000);
	json_object *o = json_object_new_object();
	assert_int_equal(mig_send_json(&plain, MIG_HELLO, o, NULL), 0);
	json_object_put(o);
	shake(&s);
	assert_true(s.r < 0);
	assert_non_null(strstr(s.err.msg, "TLS"));
	close(sv[0]);
	close(sv[1]);
}

static void test_dir_and_loopback(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	char d[128];
	snprintf(d, sizeof(d), "%s/a", dir);
	assert_int_equal(gw_tls_dir_check(d, 1, &err), 0);
	assert_int_equal(gw_tls_dir_check(d, 0, &err), 0);
	snprintf(d, sizeof(d), "%s/a/client-key.pem", dir);
	assert_int_equal(unlink(d), 0);
	snprintf(d, sizeof(d), "%s/a", dir);
	assert_int_equal(gw_tls_dir_check(d, 1, &err), 0);	/* the server needs none */
	assert_int_equal(gw_tls_dir_check(d, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "client-key.pem"));
	assert_true(cli_is_loopback("127.0.0.1"));
	assert_true(cli_is_loopback("127.3.2.1"));
	assert_true(cli_is_loopback("::1"));
	assert_true(cli_is_loopback("localhost"));
	assert_false(cli_is_loopback("0.0.0.0"));
	assert_false(cli_is_loopback("10.0.0.1"));
	assert_false(cli_is_loopback("::"));
	assert_false(cli_is_loopback("::ffff:127.0.0.1"));
	assert_false(cli_is_loopback("example.org"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages_cross),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_dir_and_loopback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
