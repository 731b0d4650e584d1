/* Unit tests for the shim's jobs (src/shim/job.c): a job runs until it waits and the loop
 * goes on; it resumes when its fd is ready (either of two) or its timer is up; its result
 * reaches done exactly once, in the loop; outside a job a wait polls in place. The loop here
 * is the shim's loop cut down to the job's part. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "godwit/util.h"
#include "../../src/shim/job.h"

struct t {
	struct job *job;
	int fd, fd2;		/* what the job waits for */
	int timeout_ms;
	int woke[4];		/* job_wait's results, in order */
	int nwoke, waits;
	int done_calls, done_r;
	char done_msg[GW_ERR_MSG_MAX];
	int64_t waited_ns;
};

static int run_waits(void *arg, struct gw_err *err)
{
	struct t *t = arg;
	job_set_phase(t->job, JOB_STREAM);
	for (int i = 0; i < t->waits; i++) {
		int64_t t0 = gw_now_mono_ns();
		int w = job_wait(t->job, t->fd, POLLIN, t->fd2, t->timeout_ms);
		t->waited_ns += gw_now_mono_ns() - t0;
		t->woke[t->nwoke++] = w;
		char c;
		if (w && read(w == 1 ? t->fd : t->fd2, &c, 1) != 1)
			return gw_err_set(err, EIO, "woken, but nothing to read");
	}
	if (t->waits == 0)
		return gw_err_set(err, EIO, "nothing to wait for");
	return 7;
}

static void on_done(void *arg, int r, struct gw_err *err)
{
	struct t *t = arg;
	t->done_calls++;
	t->done_r = r;
	snprintf(t->done_msg, sizeof(t->done_msg), "%s", err->msg);
}

/* one turn of the loop: poll what the job waits for (at most max_ms), then dispatch */
static int turn(struct t *t, int max_ms)
{
	struct pollfd pfd[JOB_POLLFDS];
	int timeout = max_ms;
	int n = job_pollfds(t->job, pfd, &timeout);
	assert_true(timeout <= max_ms);
	int r = poll(pfd, (nfds_t)n, timeout);
	job_dispatch(&t->job, pfd);
	return r;
}

static void test_ends_at_once(void **state)
{
	(void)state;
	struct t t = { .fd = -1, .fd2 = -1 };
	struct gw_err err = { 0 };
	assert_int_equal(job_start(&t.job, run_waits, on_done, &t, &err), 0);
	/* it never waited: done ran before job_start returned, with run's error */
	assert_null(t.job);
	assert_int_equal(t.done_calls, 1);
	assert_int_equal(t.done_r, -EIO);
	assert_string_equal(t.done_msg, "nothing to wait for");
}

static void test_fd_wakes(void **state)
{
	(void)state;
	int p[2], q[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	struct t t = { .fd = p[0], .fd2 = q[0], .timeout_ms = -1, .waits = 2 };
	struct gw_err err = { 0 };
	assert_int_equal(job_start(&t.job, run_waits, on_done, &t, &err), 0);
	assert_non_null(t.job);
	assert_int_equal(job_phase(t.job), JOB_STREAM);
	assert_string_equal(job_phase_name(job_phase(t.job)), "stream");
	/* nothing ready: the loop turns and the job stays put */
	for (int i = 0; i < 3; i++)
		assert_int_equal(turn(&t, 5), 0);
	assert_int_equal(t.nwoke, 0);
	assert_int_equal(write(q[1], "x", 1), 1);	/* the second fd */
	assert_int_equal(turn(&t, 1000), 1);
	assert_int_equal(t.nwoke, 1);
	assert_int_equal(t.woke[0], 2);
	/* it read that byte and waits again */
	assert_int_equal(turn(&t, 5), 0);
	assert_int_equal(t.nwoke, 1);
	assert_int_equal(t.done_calls, 0);
	assert_int_equal(write(p[1], "y", 1), 1);	/* the first */
	while (t.job)
		turn(&t, 1000);
	assert_int_equal(t.nwoke, 2);
	assert_int_equal(t.woke[1], 1);
	assert_int_equal(t.done_calls, 1);
	assert_int_equal(t.done_r, 7);
	close(p[0]); close(p[1]); close(q[0]); close(q[1]);
}

static void test_timer(void **state)
{
	(void)state;
	struct t t = { .fd = -1, .fd2 = -1, .timeout_ms = 30, .waits = 3 };
	struct gw_err err = { 0 };
	int turns = 0;
	int64_t t0 = gw_now_mono_ns();
	assert_int_equal(job_start(&t.job, run_waits, on_done, &t, &err), 0);
	while (t.job) {
		turn(&t, 1000);
		turns++;
	}
	int64_t took = gw_now_mono_ns() - t0;
	assert_int_equal(t.nwoke, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t.woke[i], 0);
	/* each wait lasted its 30 ms, and the loop's poll slept for them (no busy turning) */
	assert_true(t.waited_ns >= 3 * 30 * 1000000LL);
	assert_true(took >= 90 * 1000000LL);
	assert_true(turns >= 3 && turns <= 9);
	assert_int_equal(t.done_r, 7);
}

static void test_outside_a_job(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int64_t t0 = gw_now_mono_ns();
	assert_int_equal(job_wait(NULL, p[0], POLLIN, -1, 20), 0);
	assert_true(gw_now_mono_ns() - t0 >= 20 * 1000000LL);
	assert_int_equal(write(p[1], "z", 1), 1);
	assert_int_equal(job_wait(NULL, p[0], POLLIN, -1, 1000), 1);
	assert_int_equal(job_wait(NULL, -1, 0, p[0], 1000), 2);
	assert_int_equal(job_wait(NULL, p[1], POLLOUT, -1, 1000), 1);
	close(p[0]);
	close(p[1]);
}

/* a job may use its stack as a thread would */
static int run_deep(void *arg, struct gw_err *err)
{
	(void)err;
	struct t *t = arg;
	volatile char big[1 << 20];
	memset((char *)big, 1, sizeof(big));
	job_wait(t->job, -1, 0, -1, 1);
	return big[12345] + big[sizeof(big) - 1];
}

static void test_stack(void **state)
{
	(void)state;
	struct t t = { 0 };
	struct gw_err err = { 0 };
	assert_int_equal(job_start(&t.job, run_deep, on_done, &t, &err), 0);
	while (t.job)
		turn(&t, 1000);
	assert_int_equal(t.done_r, 2);
	/* one at a time */
	struct t u = { .fd = -1, .fd2 = -1, .timeout_ms = 1000, .waits = 1 };
	assert_int_equal(job_start(&u.job, run_waits, on_done, &u, &err), 0);
	struct job *other = u.job;
	assert_int_equal(job_start(&u.job, run_waits, on_done, &u, &err), -EBUSY);
	assert_ptr_equal(u.job, other);
	while (u.job)
		turn(&u, 2000);
	assert_int_equal(u.done_calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ends_at_once),
		cmocka_unit_test(test_fd_wakes),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_outside_a_job),
		cmocka_unit_test(test_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
