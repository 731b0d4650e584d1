/* Unit tests for helpers of src/common/util.c that guard what reaches a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_ctl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
