/* The TLB flusher: works around lost writes in QEMU 7.2's TCG migration.
 *
 * QEMU before 9.0 (upstream commit 03bfc2188f, "physmem: Fix migration dirty bitmap coherency
 * with TCG memory access"; Debian 12 ships 7.2) clears the migration dirty bitmap 64 pages at
 * a time without re-arming the dirty check in the vCPUs' softmmu TLBs. A store through a TLB
 * entry filled before such a sync marks nothing dirty, so a page already sent keeps its old
 * contents on the destination: guest kernels died there (docs/migration.md, "Lost writes
 * under TCG"). Each TLB fill after a sync checks the bitmap again, so emptying the TLB soon
 * after every sync closes the hole down to that delay.
 *
 * A guest empties its vCPU's TLB with a CR3 write (QEMU's x86 TCG flushes the whole softmmu
 * TLB on one). Linux writes CR3 for a full local flush, which it does for a range of more than
 * 33 pages (tlb_single_page_flush_ceiling): so each thread, pinned to one CPU, keeps
 * FLUSH_PAGES pages of its own and takes write access to them away and gives it back
 * (mprotect changes their present PTEs, so Linux must flush), then sleeps the period.
 *
 * The host turns it on for the length of a live move (TLBFLUSH frames, docs/agent-protocol.md):
 * always on, it cost an idle TCG guest 17 % of a host core at 1 ms. The threads start at the
 * first request and then park between moves. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define FLUSH_PAGES 64
#define FLUSH_MAX_CPUS 64
#define FLUSH_FIRST_WAIT_MS 2000 /* for every thread's first flush after a start */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* a new period (start or stop) */
	pthread_cond_t done_cv;		/* a thread flushed for the current generation */
	long period_us;			/* 0: parked */
	unsigned gen;			/* bumped by every start */
	int started;			/* threads created */
	int nthreads;
	unsigned done[FLUSH_MAX_CPUS];	/* the generation each thread last flushed for */
} fl = { .mu = PTHREAD_MUTEX_INITIALIZER,
	 .cv = PTHREAD_COND_INITIALIZER,
	 .done_cv = PTHREAD_COND_INITIALIZER };

static void flush_once(volatile char *m, size_t len)
{
	/* taking write access away changes FLUSH_PAGES present PTEs: a full local flush */
	mprotect((void *)m, len, PROT_READ);
	mprotect((void *)m, len, PROT_READ | PROT_WRITE);
}

static void *flush_loop(void *arg)
{
	int cpu = (int)(intptr_t)arg;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = FLUSH_PAGES * page;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	volatile char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (rc != 0 || m == MAP_FAILED) {
		agent_log("tlbflush: cpu %d: %s", cpu, rc ? strerror(rc) : strerror(errno));
		m = NULL;
	} else {
		for (size_t i = 0; i < len; i += page)
			m[i] = 1;
	}
	for (;;) {
		pthread_mutex_lock(&fl.mu);
		while (fl.period_us == 0)
			pthread_cond_wait(&fl.cv, &fl.mu);
		long us = fl.period_us;
		unsigned gen = fl.gen;
		pthread_mutex_unlock(&fl.mu);

		if (m)
			flush_once(m, len);
		pthread_mutex_lock(&fl.mu);
		if (fl.done[cpu] != gen) {
			fl.done[cpu] = gen;
			pthread_cond_broadcast(&fl.done_cv);
		}
		pthread_mutex_unlock(&fl.mu);
		struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int start_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_attr_t attr;

	if (n < 1)
		n = 1;
	if (n > FLUSH_MAX_CPUS)
		n = FLUSH_MAX_CPUS;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	fl.nthreads = 0;
	for (long i = 0; i < n; i++) {
		pthread_t t;
		int rc = pthread_create(&t, &attr, flush_loop, (void *)(intptr_t)i);
		if (rc != 0) {
			agent_log("tlbflush: thread for cpu %ld: %s", i, strerror(rc));
			break;
		}
		fl.nthreads++;
	}
	pthread_attr_destroy(&attr);
	return fl.nthreads;
}

int tlbflush_set(const struct agent *a, long period_us)
{
	struct timespec until;

	pthread_mutex_lock(&fl.mu);
	if (period_us > 0 && !fl.started) {
		fl.started = 1;
		start_threads();
	}
	fl.period_us = period_us;
	if (period_us > 0)
		fl.gen++;
	pthread_cond_broadcast(&fl.cv);
	/* a start is answered once every thread has emptied its TLB at least once */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FLUSH_FIRST_WAIT_MS / 1000;
	int flushed = 0;
	while (period_us > 0) {
		flushed = 0;
		for (int i = 0; i < fl.nthreads; i++)
			flushed += fl.done[i] == fl.gen;
		if (flushed == fl.nthreads ||
		    pthread_cond_timedwait(&fl.done_cv, &fl.mu, &until) == ETIMEDOUT)
			break;
	}
	int n = fl.nthreads;
	pthread_mutex_unlock(&fl.mu);
	if (period_us > 0 && flushed < n)
		agent_log("tlbflush: %d of %d threads flushed in time", flushed, n);
	agent_dbg(a, "tlbflush: every %ld us, %d thread(s)", period_us, n);
	return period_us > 0 ? flushed : n;
}
