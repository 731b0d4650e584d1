/* Helpers for the unit tests of a move's further connections (test_admit.c, test_relay.c):
 * a loopback listener, and clients that connect and may say CONFIG {kind: token} at once.
 * Header-only: each test binary includes it once, after cmocka.h. */
#ifndef GODWIT_ADMIT_TESTLIB_H
#define GODWIT_ADMIT_TESTLIB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "godwit/migproto.h"

static int listener(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t al = sizeof(*a);
	*a = (struct sockaddr_in){ .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
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
static int dial_token(const struct sockaddr_in *a, const char *kind, const char *token)
{
	int fd = dial(a);
	struct mig_conn c;
	struct gw_err err = { 0 };
	mig_conn_init(&c, fd, 5000);
	json_object *o = json_object_new_object();
	json_object_object_add(o, kind, json_object_new_string(token));
	assert_int_equal(mig_send_json(&c, MIG_CONFIG, o, &err), 0);
	json_object_put(o);
	return fd;
}

#endif
