/* Unit tests for helpers of src/common that guard what reaches a terminal (util.c) and what
 * base64 text from outside may decode to (b64.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "godwit/util.h"

static void test_escape_ctl(void **state)
{
	(void)state;
	char out[64];
	gw_escape_ctl("destination refused: plain words", out, sizeof(out));
	assert_string_equal(out, "destination refused: plain words");
	/* what a hostile peer might send: a clear-screen, a retitle, a bell, a delete */
	gw_escape_ctl("a\x1b[2Jb\x1b]0;pwned\x07" "c\x7f\n", out, sizeof(out));
	assert_string_equal(out, "a\\x1b[2Jb\\x1b]0;pwned\\x07c\\x7f\\x0a");
	/* UTF-8 passes */
	gw_escape_ctl("caf\xc3\xa9", out, sizeof(out));
	assert_string_equal(out, "caf\xc3\xa9");
	/* cut to fit, never half an escape */
	gw_escape_ctl("abcdef\x1b", out, 9);
	assert_string_equal(out, "abcdef");
	gw_escape_ctl("\x01\x02", out, 5);
	assert_string_equal(out, "\\x01");
	gw_escape_ctl("xyz", out, 1);
	assert_string_equal(out, "");
}

static void roundtrip(const void *data, size_t len, const char *want)
{
	char *t = gw_b64_encode(data, len);
	assert_non_null(t);
	if (want)
		assert_string_equal(t, want);
	unsigned char *back;
	size_t n;
	assert_int_equal(gw_b64_decode(t, &back, &n), 0);
	assert_int_equal(n, len);
	assert_memory_equal(back, data, len);
	free(back);
	free(t);
}

static void test_b64(void **state)
{
	(void)state;
	roundtrip("", 0, "");
	roundtrip("f", 1, "Zg==");
	roundtrip("fo", 2, "Zm8=");
	roundtrip("foo", 3, "Zm9v");
	roundtrip("foob", 4, "Zm9vYg==");
	unsigned char bytes[256];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof(bytes); len += 17)
		roundtrip(bytes, len, NULL);
	roundtrip("\0\0\0\0", 4, "AAAAAA==");
	/* what a peer may send instead: each is refused, nothing allocated */
	static const char *bad[] = { "Zg=", "Zm9", "Zg=a", "Z===", "====", "Zm9v\n",
				     "Zm 9", "Zm9v====", "Zm9-", "Zm9v\nZm9v", "=Zm9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *out = (unsigned char *)"x";
		size_t n = 1;
		assert_int_equal(gw_b64_decode(bad[i], &out, &n), -EINVAL);
		assert_null(out);
		assert_int_equal(n, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_ctl),
		cmocka_unit_test(test_b64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
