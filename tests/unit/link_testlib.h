/* Helper for the unit tests of the agent link (test_frame.c, test_alink_restore.c): the bytes a
 * link has queued for writing, as they would go on the wire. Header-only: each test binary
 * includes it once, after cmocka.h. */
#ifndef GODWIT_LINK_TESTLIB_H
#define GODWIT_LINK_TESTLIB_H

#include <unistd.h>

#include "godwit/frame.h"

/* Everything a has queued for writing, written through a pipe, into buf (at most cap). */
static size_t drain_raw(struct gw_link *a, uint8_t *buf, size_t cap)
{
	struct gw_err err = { 0 };
	size_t n = 0;
	ssize_t r;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(gw_link_flush(a, p[1], &err), 0);
	close(p[1]);
	while (n < cap && (r = read(p[0], buf + n, cap - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	return n;
}

#endif
