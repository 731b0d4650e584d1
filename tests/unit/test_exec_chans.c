/* Unit tests for exec channel numbers (src/shim/exec_chans.c): all 65535 can be live at once
 * and then none is handed out; a number comes back only after its EXIT, and the search goes
 * round, so that a number just freed is not the next one given; after a move the numbers the
 * guest still speaks on are not handed out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/shim/exec_chans.h"

static struct exec_chans c;

static void test_all_then_none(void **state)
{
	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 1; i <= EXEC_CHAN_MAX; i++)
		assert_int_equal(exec_chan_take(&c), i);
	assert_int_equal(exec_chan_take(&c), -1);
	/* the agent's EXIT on 40000 frees it, and only it */
	exec_chan_seen(&c, 40000, 1);
	assert_int_equal(exec_chan_take(&c), 40000);
	assert_int_equal(exec_chan_take(&c), -1);
	/* chan 0 and numbers out of range change nothing */
	exec_chan_seen(&c, 0, 1);
	exec_chan_seen(&c, 70000, 1);
	exec_chan_seen(&c, -3, 1);
	assert_int_equal(exec_chan_take(&c), -1);
}

static void test_round_robin(void **state)
{
	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(exec_chan_take(&c), 1);
	assert_int_equal(exec_chan_take(&c), 2);
	exec_chan_seen(&c, 1, 1);
	/* 1 is free again, but the next is 3: late frames of session 1 reach no one new */
	assert_int_equal(exec_chan_take(&c), 3);
	exec_chan_seen(&c, 2, 0); /* output on a live session: still live */
	assert_true(exec_chan_live(&c, 2));
	assert_false(exec_chan_live(&c, 1));
	/* past the top the search wraps to 1 */
	c.next = EXEC_CHAN_MAX;
	assert_int_equal(exec_chan_take(&c), EXEC_CHAN_MAX);
	assert_int_equal(exec_chan_take(&c), 1);
	assert_int_equal(exec_chan_take(&c), 4);
}

static void test_after_a_move(void **state)
{
	(void)state;
	memset(&c, 0, sizeof(c));
	/* a destination's shim starts empty; the guest still runs sessions 1 and 2 from before
	 * the move, and speaks on them */
	exec_chan_seen(&c, 1, 0);
	exec_chan_seen(&c, 2, 0);
	assert_int_equal(exec_chan_take(&c), 3);
	exec_chan_seen(&c, 1, 1);
	assert_int_equal(exec_chan_take(&c), 4);
	c.next = 1;
	assert_int_equal(exec_chan_take(&c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_then_none),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_after_a_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
