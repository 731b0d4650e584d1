/* Unit tests for the detach keys (src/cli/cli_session.c, docker's --detach-keys): ctrl-X for a
 * letter and the six ASCII control punctuations, single characters, commas between; anything
 * else, and more than CLI_DETACH_MAX keys, refused; "" means no detaching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/cli/shimctl.h"

static void test_good(void **state)
{
	char k[CLI_DETACH_MAX];
	size_t n;
	(void)state;
	assert_int_equal(cli_detach_keys_parse(CLI_DETACH_DEFAULT, k, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(k, "\x10\x11", 2);
	assert_int_equal(cli_detach_keys_parse("ctrl-a,x,ctrl-@,ctrl-_,ctrl-\\", k, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(k, "\x01x\x00\x1f\x1c", 5);
	assert_int_equal(cli_detach_keys_parse("", k, &n), 0);
	assert_int_equal(n, 0);
}

static void test_bad(void **state)
{
	char k[CLI_DETACH_MAX];
	size_t n;
	(void)state;
	assert_int_equal(cli_detach_keys_parse("ctrl-xx", k, &n), -1);
	assert_int_equal(cli_detach_keys_parse("ctrl-1", k, &n), -1);
	assert_int_equal(cli_detach_keys_parse("ctrl-A", k, &n), -1);
	assert_int_equal(cli_detach_keys_parse("ab", k, &n), -1);
	assert_int_equal(cli_detach_keys_parse("a,,b", k, &n), 0); /* empty keys are skipped */
	assert_int_equal(n, 2);
	assert_int_equal(cli_detach_keys_parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", k, &n), 0);
	assert_int_equal(n, CLI_DETACH_MAX);
	assert_int_equal(cli_detach_keys_parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", k, &n), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
