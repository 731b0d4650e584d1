/* Tests for mig_env_long (src/migrate/qemu_mig.c): the measurement knobs' parser
 * (GODWIT_MIG_VCPU_NICE). Unset or empty gives the default; a value
 * that is not a whole number in range gives the "bad" value, never a partial parse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "../../src/migrate/migrate.h"

#define KNOB "GODWIT_TEST_KNOB"

static long knob(const char *value)
{
	if (value)
		setenv(KNOB, value, 1);
	else
		unsetenv(KNOB);
	return mig_env_long(KNOB, -20, 0, -10, 99);
}

static void test_unset_and_empty(void **state)
{
	(void)state;
	assert_int_equal(knob(NULL), -10);
	assert_int_equal(knob(""), -10);
}

static void test_in_range(void **state)
{
	(void)state;
	assert_int_equal(knob("0"), 0);
	assert_int_equal(knob("-20"), -20);
	assert_int_equal(knob("-5"), -5);
}

static void test_bad(void **state)
{
	(void)state;
	assert_int_equal(knob("1"), 99);	      /* above hi */
	assert_int_equal(knob("-21"), 99);	      /* below lo */
	assert_int_equal(knob("-5x"), 99);	      /* trailing junk */
	assert_int_equal(knob("x"), 99);
	assert_int_equal(knob("99999999999999999999"), 99); /* overflows long */
	assert_int_equal(knob("-5 "), 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_and_empty),
		cmocka_unit_test(test_in_range),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
