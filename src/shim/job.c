/* The shim's jobs (job.h): a coroutine per job, switched with ucontext. The loop enters the
 * job (switch_in); the job comes back to the loop when it waits (job_wait) or ends (entry).
 * Under AddressSanitizer every switch is announced, so it knows which stack is in use. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "godwit/util.h"
#include "job.h"

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define JOB_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define JOB_ASAN 1
#endif
#endif
#ifdef JOB_ASAN
#include <sanitizer/common_interface_defs.h>
#define asan_start(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define asan_finish(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define asan_start(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define asan_finish(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

/* reserved, not committed: as much as a thread's default stack; one guard page below */
#define JOB_STACK (8u << 20)
/* a job whose fd is ready at once goes on without a turn of the loop, unless it has not
 * given the loop one for this long (a long transfer must not starve the control socket) */
#define JOB_FAST_NS (50 * 1000000LL)

struct job {
	job_run_fn run;
	job_done_fn done;
	void *arg;
	int result;
	struct gw_err err;
	enum job_phase phase;
	ucontext_t self, loop;
	void *stack;
	int inside;		/* running on its own stack now */
	int finished;		/* run returned */
	struct pollfd want[JOB_POLLFDS]; /* what it waits for ... */
	int64_t deadline_ns;	/* ... and until when (0: no limit) */
	int woke;		/* job_wait's result */
	int64_t yielded_ns;	/* when it last gave the loop a turn */
	void *fake_loop, *fake_self;
	const void *loop_bottom;
	size_t loop_size;
};

static const char *const phase_names[] = {
	[JOB_START] = "start",		[JOB_CONNECT] = "connect",
	[JOB_CONFIG] = "config",	[JOB_PREPARE] = "prepare",
	[JOB_MIRROR] = "mirror",	[JOB_STREAM] = "stream",
	[JOB_HANDOVER] = "hand-over",	[JOB_COMMITTED] = "committed",
	[JOB_POSTCOPY] = "post-copy",	[JOB_SAVE] = "save",
};

const char *job_phase_name(enum job_phase p)
{
	return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) && phase_names[p]
		       ? phase_names[p] : "unknown";
}

void job_set_phase(struct job *j, enum job_phase p)
{
	if (j)
		j->phase = p;
}

enum job_phase job_phase(const struct job *j)
{
	return j ? j->phase : JOB_START;
}

static void switch_in(struct job *j)
{
	asan_start(&j->fake_loop, (char *)j->stack + getpagesize(), JOB_STACK - getpagesize());
	j->inside = 1;
	swapcontext(&j->loop, &j->self);
	asan_finish(j->fake_loop, NULL, NULL);
}

/* makecontext passes ints: the job's address in two halves */
static void entry(unsigned hi, unsigned lo)
{
	struct job *j = (struct job *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
	asan_finish(NULL, &j->loop_bottom, &j->loop_size);
	j->yielded_ns = gw_now_mono_ns();
	j->result = j->run(j->arg, &j->err);
	j->finished = 1;
	j->inside = 0;
	asan_start(NULL, j->loop_bottom, j->loop_size); /* this stack is done with */
	setcontext(&j->loop);
}

static void finish(struct job **slot)
{
	struct job *j = *slot;
	*slot = NULL;
	if (j->result < 0 && !j->err.code)
		gw_err_set(&j->err, -j->result, "job failed");
	j->done(j->arg, j->result, &j->err);
	munmap(j->stack, JOB_STACK);
	free(j);
}

int job_start(struct job **slot, job_run_fn run, job_done_fn done, void *arg,
	      struct gw_err *err)
{
	if (*slot)
		return gw_err_set(err, EBUSY, "another job is running");
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return gw_err_set(err, ENOMEM, "out of memory");
	j->stack = mmap(NULL, JOB_STACK, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (j->stack == MAP_FAILED) {
		free(j);
		return gw_err_sys(err, errno, "job stack");
	}
	mprotect(j->stack, (size_t)getpagesize(), PROT_NONE);
	*j = (struct job){ .run = run, .done = done, .arg = arg, .stack = j->stack };
	getcontext(&j->self);
	j->self.uc_stack.ss_sp = j->stack;
	j->self.uc_stack.ss_size = JOB_STACK;
	j->self.uc_link = NULL;
	uintptr_t a = (uintptr_t)j;
	makecontext(&j->self, (void (*)(void))entry, 2, (unsigned)(a >> 32), (unsigned)a);
	*slot = j;
	switch_in(j);
	if (j->finished)
		finish(slot);
	return 0;
}

static int which_ready(const struct pollfd *p)
{
	return p[0].fd >= 0 && p[0].revents ? 1 : p[1].fd >= 0 && p[1].revents ? 2 : 0;
}

int job_wait(struct job *j, int fd, short events, int fd2, int timeout_ms)
{
	struct pollfd p[JOB_POLLFDS] = { { .fd = fd, .events = events },
					 { .fd = fd2, .events = POLLIN } };
	int64_t now = gw_now_mono_ns();
	if (!j || !j->inside || now - j->yielded_ns < JOB_FAST_NS) {
		/* in place: outside the job, or a quick look before giving the loop a turn */
		int in_job = j && j->inside;
		int r = poll(p, JOB_POLLFDS, in_job ? 0 : timeout_ms);
		if (r > 0 || !in_job)
			return r > 0 ? which_ready(p) : 0;
	}
	j->want[0] = p[0];
	j->want[1] = p[1];
	j->deadline_ns = timeout_ms < 0 ? 0 : now + (int64_t)timeout_ms * 1000000;
	j->woke = 0;
	j->inside = 0;
	asan_start(&j->fake_self, j->loop_bottom, j->loop_size);
	swapcontext(&j->self, &j->loop);
	asan_finish(j->fake_self, &j->loop_bottom, &j->loop_size);
	j->yielded_ns = gw_now_mono_ns();
	return j->woke;
}

int job_pollfds(const struct job *j, struct pollfd *pfd, int *timeout_ms)
{
	if (!j)
		return 0;
	pfd[0] = j->want[0];
	pfd[1] = j->want[1];
	if (j->deadline_ns)
		gw_timeout_lower(timeout_ms, j->deadline_ns);
	return JOB_POLLFDS;
}

void job_dispatch(struct job **slot, const struct pollfd *pfd)
{
	struct job *j = *slot;
	if (!j)
		return;
	int woke = which_ready(pfd);
	if (!woke && (!j->deadline_ns || gw_now_mono_ns() < j->deadline_ns))
		return;
	j->woke = woke;
	switch_in(j);
	if (j->finished)
		finish(slot);
}
