/* Tests for the migration policy (src/migproto/policy.c), driven by synthetic query-migrate
 * samples shaped like the ones measured on TCG (docs/migration-policy.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "godwit/policy.h"

#define MiB (1024.0 * 1024.0)
#define SEC 1000000000LL

/* Apply every action the policy wants for one sample; return the last non-CONTINUE kind (or
 * CONTINUE) and count them in *n. Telling QEMU the link's rate (POL_SET_SWITCHOVER_BW, once
 * the first pass is done) is counted apart, in switchover_told (test_switchover_bandwidth). */
static int switchover_told;
static enum pol_action_kind drain(struct pol_state *st, const struct pol_sample *s,
				  const struct pol_targets *t, struct pol_action *last, int *n)
{
	struct pol_action a;
	enum pol_action_kind k = POL_CONTINUE;
	int r;
	*n = 0;
	while ((r = pol_decide(st, s, t, &a)) > 0) {
		if (a.kind == POL_SET_SWITCHOVER_BW) {
			switchover_told++;
			continue;
		}
		k = a.kind;
		*last = a;
		if (++*n > 5)
			fail_msg("policy keeps returning %s", pol_action_name(a.kind));
	}
	assert_int_equal(r, 0);
	return k;
}

/* A guest rewriting a 256 MiB working set at 200 MiB/s over a link of `link` bytes/s:
 * `remaining` never drops below what was dirtied during a round. */
static struct pol_sample dirtier(int64_t t_ns, uint64_t round, double link)
{
	struct pol_sample s = { 0 };
	s.elapsed_ns = t_ns;
	s.dirty_sync_count = round;
	s.rate = link;
	s.dirty_rate = 200 * MiB;
	s.total = 1ull << 30;
	s.remaining = round < 2 ? (1ull << 30) / 2 : 256ull << 20;
	return s;
}

/* Targets with the defaults for a guest of mem bytes, post-copy allowed or not, and the
 * policy's starting state for them. */
static void start(struct pol_targets *t, struct pol_setup *su, struct pol_state *st,
		  uint64_t mem, int allow_postcopy)
{
	pol_targets_default(t, mem);
	t->allow_postcopy = allow_postcopy;
	pol_initial(t, su, st);
}

static void test_initial(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	start(&t, &su, &st, 1ull << 30, 1);
	assert_true(su.cap_xbzrle);
	assert_true(su.cap_postcopy);
	assert_false(su.cap_auto_converge);	/* post-copy is the last step, not throttling */
	/* QEMU starts with a limit below the 50 ms target; the policy raises it later */
	assert_int_equal(su.downtime_limit_ms, 5);
	assert_int_equal(st.downtime_ms, 5);
	assert_true(su.max_bandwidth >= (8ull << 30));	/* uncapped, not QEMU's 128 MiB/s */
	assert_true(su.xbzrle_cache_size > 0 && su.xbzrle_cache_size <= (256ull << 20));

	t.allow_postcopy = 0;
	t.allow_xbzrle = 0;
	t.bandwidth_cap = 100ull << 20;
	pol_initial(&t, &su, &st);
	assert_true(su.cap_auto_converge);
	assert_false(su.cap_postcopy);
	assert_false(su.cap_xbzrle);
	assert_int_equal(su.xbzrle_cache_size, 0);
	assert_int_equal(su.max_bandwidth, 100ull << 20);
}

/* Free-page hints: only for a default move (post-copy allowed) of a mostly idle guest */
static void test_hints_first(void **state)
{
	(void)state;
	struct pol_targets t;
	pol_targets_default(&t, 1ull << 30);
	assert_true(pol_hints_first(&t, 0));
	assert_true(pol_hints_first(&t, 0.3));
	assert_false(pol_hints_first(&t, POL_HINTS_MAX_LOAD));
	assert_false(pol_hints_first(&t, 1.0));
	assert_false(pol_hints_first(&t, -1));		/* not known: post-copy stays armed */
	t.allow_postcopy = 0;				/* --no-postcopy: QEMU hints anyway */
	assert_false(pol_hints_first(&t, 0));
}

static void test_idle_converges(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 1);
	/* idle guest: first pass at 2 GiB/s, a few MiB dirty afterwards */
	for (int i = 0; i < 8; i++) {
		struct pol_sample s = { .elapsed_ns = i * SEC / 10, .rate = 2048 * MiB,
					.dirty_rate = 2 * MiB, .dirty_sync_count = 1 + i / 3,
					.remaining = (uint64_t)((8 - i) * 100 * MiB) };
		assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
		assert_int_equal(n, 0);
	}
	/* 20 MiB left: fits the 50 ms target, so nothing to do; QEMU iterates under 5 ms */
	struct pol_sample s = { .elapsed_ns = SEC, .rate = 2048 * MiB, .dirty_rate = 2 * MiB,
				.dirty_sync_count = 4, .remaining = 20 * MiB };
	assert_int_equal(pol_decide(&st, &s, &t, &a), 0);
	assert_non_null(strstr(a.reason, "fits"));
	/* round 8 and still not done: the safety net raises the limit to the target */
	s.dirty_sync_count = 8;
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_equal(a.kind, POL_SET_DOWNTIME);
	assert_int_equal(a.value, 50);
	assert_non_null(strstr(a.reason, "5 -> 50 ms"));
	/* QEMU gets its rounds under the new limit before anything else happens */
	assert_int_equal(pol_decide(&st, &s, &t, &a), 0);
	/* never raised twice */
	s.dirty_sync_count = 9;
	assert_int_equal(pol_decide(&st, &s, &t, &a), 0);
}

/* A guest that converges in the first rounds stops under the low limit: no action at all. */
static void test_low_limit_kept_while_converging(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 1);
	for (uint64_t r = 1; r <= 3; r++) {
		struct pol_sample s = { .elapsed_ns = (int64_t)r * SEC / 4, .rate = 1024 * MiB,
					.dirty_rate = 100 * MiB, .dirty_sync_count = r,
					.remaining = (uint64_t)(300 * MiB / (double)(r * r * r)) };
		assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
		assert_int_equal(n, 0);
	}
	assert_int_equal(st.downtime_ms, 5);
	/* a user target below the starting limit is used as it is */
	t.max_downtime_ns = 3 * 1000000LL;
	pol_initial(&t, &su, &st);
	assert_int_equal(su.downtime_limit_ms, 3);
	struct pol_sample s = { .elapsed_ns = SEC, .rate = 1024 * MiB, .dirty_rate = 900 * MiB,
				.dirty_sync_count = 5, .remaining = 100 * MiB };
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_equal(a.kind, POL_SET_SWITCHOVER_BW); /* the reset state: told anew */
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_not_equal(a.kind, POL_SET_DOWNTIME);
}

static void test_dirtier_xbzrle_then_postcopy(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 1);
	double link = 180 * MiB;
	/* round 1 is the bulk pass: never judged */
	assert_int_equal(drain(&st, &(struct pol_sample){ .elapsed_ns = SEC, .rate = link,
			 .dirty_rate = 200 * MiB, .dirty_sync_count = 1, .remaining = 600 << 20 },
			 &t, &a, &n), POL_CONTINUE);
	struct pol_sample s = dirtier(3 * SEC, 2, link);
	/* not converging: the first step */
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_SET_XBZRLE_CACHE);
	assert_int_equal(n, 1);
	assert_int_equal(a.value, 512ull << 20);	/* next pow2 >= 2 x 256 MiB */
	assert_non_null(strstr(a.reason, "256 MiB working set"));
	/* next round: give xbzrle time; same sample again never repeats the step */
	s = dirtier(4 * SEC, 3, link);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	/* two rounds later xbzrle helped too little (encoding 1.1x, 50% misses): with post-copy
	 * allowed, that is the next step */
	s = dirtier(6 * SEC, 4, link);
	s.xbzrle_encoding_rate = 1.1;
	s.xbzrle_miss_rate = 0.5;
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_START_POSTCOPY);
	assert_int_equal(n, 1);
	assert_non_null(strstr(a.reason, "post-copy"));
	/* in post-copy nothing more happens, not even at the time limit */
	s = dirtier(70 * SEC, 9, link);
	s.postcopy_active = 1;
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
}

static void test_xbzrle_that_works_is_left_alone(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 1);
	struct pol_sample s = dirtier(3 * SEC, 2, 180 * MiB);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_SET_XBZRLE_CACHE);
	/* cache large enough: 8x encoding, few misses -> effective rate far above dirty rate */
	for (uint64_t r = 4; r < 10; r++) {
		s = dirtier((int64_t)r * SEC, r, 180 * MiB);
		s.remaining = (256ull << 20) >> (r - 3); /* it works: less left each round */
		s.xbzrle_encoding_rate = 8;
		s.xbzrle_miss_rate = 0.05;
		/* only the round-8 safety net on the downtime limit, never another step */
		assert_int_equal(drain(&st, &s, &t, &a, &n), r == 8 ? POL_SET_DOWNTIME : POL_CONTINUE);
	}
}

/* Rounds that stop making progress count as not converging, whatever the rates promise. */
static void test_stalled_rounds_escalate(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 0);
	/* a flat-out writer; xbzrle claims 20x encoding with few misses, so the predicted
	 * downtime always "fits", yet 250 MiB stay left round after round */
	enum pol_action_kind seen[8];
	int ns = 0;
	for (uint64_t r = 2; r < 16 && ns < 8; r++) {
		struct pol_sample s = dirtier((int64_t)r * SEC / 5, r, 1100 * MiB);
		s.dirty_rate = 1100 * MiB;
		s.remaining = 250ull << 20;
		s.xbzrle_encoding_rate = 20;
		s.xbzrle_miss_rate = 0.02;
		enum pol_action_kind k = drain(&st, &s, &t, &a, &n);
		if (k != POL_CONTINUE)
			seen[ns++] = k;
	}
	/* round 2: not converging on rates alone -> xbzrle; then stalled -> the downtime limit,
	 * then throttling */
	assert_true(ns >= 3);
	assert_int_equal(seen[0], POL_SET_XBZRLE_CACHE);
	assert_int_equal(seen[1], POL_SET_DOWNTIME);
	assert_int_equal(seen[2], POL_THROTTLE);
	/* a guest whose rounds keep shrinking is never called stalled */
	pol_initial(&t, &su, &st);
	for (uint64_t r = 2; r < 12; r++) {
		struct pol_sample s = { .elapsed_ns = (int64_t)r * SEC / 5, .rate = 1024 * MiB,
					.dirty_rate = 300 * MiB, .dirty_sync_count = r,
					.remaining = (uint64_t)((400 >> (r - 2)) * MiB) + 1 };
		assert_int_equal(drain(&st, &s, &t, &a, &n), r == 8 ? POL_SET_DOWNTIME : POL_CONTINUE);
	}
}

static void test_throttle_without_postcopy_then_cancel(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 0);
	double link = 180 * MiB;
	struct pol_sample s = dirtier(2 * SEC, 2, link);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_SET_XBZRLE_CACHE);
	s = dirtier(5 * SEC, 4, link);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_SET_DOWNTIME);
	s = dirtier(6 * SEC, 6, link);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_THROTTLE);
	assert_int_equal(a.value, 30);
	assert_int_equal(a.value2, 20);
	/* throttling once is enough: QEMU raises it by value2 per round itself */
	s = dirtier(9 * SEC, 9, link);
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	/* a flat-out writer still does not converge: cancel at 60 s with the numbers */
	s = dirtier(60 * SEC, 40, link);
	s.dirty_rate = 210 * MiB;
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CANCEL);
	assert_string_equal(a.reason, "did not converge in 60 s: dirty 210 MiB/s vs link 180 MiB/s, "
			    "256 MiB left; post-copy not allowed (--no-postcopy)");
	/* after cancel: nothing more */
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	assert_int_equal(n, 0);
}

static void test_timeout_with_postcopy_switches(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	/* a big guest converging slowly over a capped link: at the limit, post-copy finishes it */
	pol_targets_default(&t, 16ull << 30);
	t.bandwidth_cap = 100ull << 20;
	t.allow_xbzrle = 0;
	pol_initial(&t, &su, &st);
	assert_int_equal(su.max_bandwidth, 100ull << 20);
	struct pol_sample s = { .elapsed_ns = 30 * SEC, .rate = 100 * MiB, .dirty_rate = 10 * MiB,
				.dirty_sync_count = 1, .remaining = 10ull << 30 };
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	s.elapsed_ns = 60 * SEC;
	s.remaining = 7ull << 30;
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_START_POSTCOPY);
	assert_non_null(strstr(a.reason, "60 s limit reached"));
}

static void test_cap_honoured_and_named(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	pol_targets_default(&t, 1ull << 30);
	t.bandwidth_cap = 64ull << 20;
	t.allow_xbzrle = t.allow_throttle = 0;
	pol_initial(&t, &su, &st);
	assert_int_equal(su.max_bandwidth, 64ull << 20);
	/* no action ever raises bandwidth: only continue and finally post-copy */
	for (uint64_t r = 1; r < 30; r++) {
		struct pol_sample s = dirtier((int64_t)r * SEC, r, 64 * MiB);
		enum pol_action_kind k = drain(&st, &s, &t, &a, &n);
		assert_true(k == POL_CONTINUE || k == POL_SET_DOWNTIME || k == POL_START_POSTCOPY);
		if (k == POL_START_POSTCOPY) {
			assert_true(r >= 2);
			return;
		}
	}
	fail_msg("post-copy never started");
}

static void test_cancel_names_cap(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	pol_targets_default(&t, 1ull << 30);
	t.bandwidth_cap = 64ull << 20;
	t.allow_postcopy = 0;
	t.max_total_ns = 10 * SEC;
	pol_initial(&t, &su, &st);
	struct pol_sample s = dirtier(10 * SEC, 5, 64 * MiB);
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_equal(a.kind, POL_CANCEL);
	assert_non_null(strstr(a.reason, "did not converge in 10 s"));
}

/* QEMU's rate is what it sent in the last 100 ms: once little is left, the trickle an idle
 * guest dirties (measured: "dirty 1 MiB/s vs link 1 MiB/s", 90 KiB left, switched to
 * post-copy at round 10). The policy judges by the fastest rate seen and tells QEMU that
 * rate once the first pass is done (and again when it grows by a quarter). */
static void test_switchover_bandwidth(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	int n;
	start(&t, &su, &st, 1ull << 30, 1);
	switchover_told = 0;
	/* the first pass at 300 MiB/s: nothing told yet */
	struct pol_sample s = { .elapsed_ns = SEC / 2, .rate = 300 * MiB, .dirty_rate = 1 * MiB,
				.dirty_sync_count = 1, .remaining = 200 * MiB };
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	assert_int_equal(switchover_told, 0);
	/* round 2: QEMU sends a trickle, 1 MiB/s; the policy tells QEMU the link's 300 MiB/s */
	s = (struct pol_sample){ .elapsed_ns = SEC, .rate = 1 * MiB, .dirty_rate = 1 * MiB,
				 .dirty_sync_count = 2, .remaining = 90 << 10 };
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_equal(a.kind, POL_SET_SWITCHOVER_BW);
	assert_int_equal(a.value, 300ull << 20);
	assert_string_equal(pol_action_name(a.kind), "switchover-bandwidth");
	assert_non_null(strstr(a.reason, "300 MiB/s"));
	/* ... and what is left fits at that rate: nothing else, in no later round either (the
	 * trickle is never taken for a link that cannot keep up) */
	assert_int_equal(pol_decide(&st, &s, &t, &a), 0);
	assert_non_null(strstr(a.reason, "fits"));
	for (uint64_t r = 3; r < 14; r++) {
		s.dirty_sync_count = r;
		s.elapsed_ns = (int64_t)r * SEC / 10 + SEC;
		enum pol_action_kind k = drain(&st, &s, &t, &a, &n);
		assert_true(k == POL_CONTINUE || k == POL_SET_DOWNTIME);
	}
	assert_int_equal(switchover_told, 0);
	/* a faster link later (by more than a quarter) is told again, a slightly faster one not */
	s.rate = 350 * MiB;
	assert_int_equal(pol_decide(&st, &s, &t, &a), 0);
	s.rate = 400 * MiB;
	assert_int_equal(pol_decide(&st, &s, &t, &a), 1);
	assert_int_equal(a.kind, POL_SET_SWITCHOVER_BW);
	assert_int_equal(a.value, 400ull << 20);
	/* no link worth telling (under 1 MiB/s all along): nothing told */
	start(&t, &su, &st, 1ull << 30, 1);
	s = (struct pol_sample){ .elapsed_ns = SEC, .rate = 512 << 10, .dirty_rate = 0,
				 .dirty_sync_count = 2, .remaining = 4096 };
	assert_int_equal(drain(&st, &s, &t, &a, &n), POL_CONTINUE);
	assert_int_equal(switchover_told, 0);
}

static void test_bad_input(void **state)
{
	(void)state;
	struct pol_targets t;
	struct pol_setup su;
	struct pol_state st;
	struct pol_action a;
	start(&t, &su, &st, 1ull << 30, 1);
	struct pol_sample s = dirtier(SEC, 2, NAN);
	assert_int_equal(pol_decide(&st, &s, &t, &a), -EINVAL);
	s = dirtier(SEC, 2, -1);
	assert_int_equal(pol_decide(&st, &s, &t, &a), -EINVAL);
	s = dirtier(SEC, 2, 100 * MiB);
	t.max_downtime_ns = 0;
	assert_int_equal(pol_decide(&st, &s, &t, &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial),
		cmocka_unit_test(test_hints_first),
		cmocka_unit_test(test_idle_converges),
		cmocka_unit_test(test_low_limit_kept_while_converging),
		cmocka_unit_test(test_dirtier_xbzrle_then_postcopy),
		cmocka_unit_test(test_xbzrle_that_works_is_left_alone),
		cmocka_unit_test(test_stalled_rounds_escalate),
		cmocka_unit_test(test_throttle_without_postcopy_then_cancel),
		cmocka_unit_test(test_timeout_with_postcopy_switches),
		cmocka_unit_test(test_cap_honoured_and_named),
		cmocka_unit_test(test_cancel_names_cap),
		cmocka_unit_test(test_switchover_bandwidth),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
