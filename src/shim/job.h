/* Long work of the shim (a migration at either end, a snapshot) runs as a job of the shim's
 * event loop (STYLE rule 13): a coroutine with a stack of its own that runs until it has to
 * wait (for its peer, for QEMU's reply or event, for a timer), then gives the CPU back to the
 * loop. The loop serves the control socket and the agent link meanwhile, and resumes the job
 * when its fd is ready or its time has come. The job's code reads as the protocol it speaks,
 * phase after phase (docs/architecture.md, "A migration as a job"). One job at a time. */
#ifndef GODWIT_SHIM_JOB_H
#define GODWIT_SHIM_JOB_H

#include <poll.h>

#include "godwit/err.h"

/* Where a job is: `migrate --status` and query-migration show it (job_phase_name). The
 * migration engine's failure handling is per phase (docs/migration-protocol.md §4). */
enum job_phase {
	JOB_START,	/* checks; nothing changed yet */
	JOB_CONNECT,	/* source: connecting; destination: waiting for the source */
	JOB_CONFIG,	/* HELLO and CONFIG */
	JOB_PREPARE,	/* the destination prepares: its QEMU, disks, network */
	JOB_MIRROR,	/* the disks mirrored into the destination's NBD exports */
	JOB_STREAM,	/* QEMU's RAM stream, steered by the policy */
	JOB_HANDOVER,	/* QEMU done: DONE, COMMIT */
	JOB_COMMITTED,	/* COMMIT crossed: the destination owns the container */
	JOB_POSTCOPY,	/* post-copy's end: the pages still to come */
	JOB_SAVE,	/* a snapshot being written */
};
const char *job_phase_name(enum job_phase p);

struct job;
/* run does the work (inside the job; its waits go through job_wait) and returns 0 or a
 * negative errno with err filled; done then runs in the loop, once, with run's result. */
typedef int (*job_run_fn)(void *arg, struct gw_err *err);
typedef void (*job_done_fn)(void *arg, int r, struct gw_err *err);

/* Start a job: it runs at once until its first wait. *slot holds it while it runs and is
 * NULL again after done has run (which may happen before job_start returns). -errno (err
 * filled) when no job could be made: run never ran, done is not called. */
int job_start(struct job **slot, job_run_fn run, job_done_fn done, void *arg,
	      struct gw_err *err);

/* Inside job j: wait until fd is ready for events (POLLIN/POLLOUT), fd2 (-1: none) is
 * readable, or timeout_ms passed (< 0: no limit); the loop runs meanwhile. Returns 1 (fd
 * ready), 2 (fd2 readable) or 0 (time up). Called outside j (j NULL, or from the loop while j
 * is suspended) it polls in place, blocking, with the same result. */
int job_wait(struct job *j, int fd, short events, int fd2, int timeout_ms);

/* The loop's side: the fds j waits for go into pfd (returns how many: 0..2; pfd needs room
 * for JOB_POLLFDS) and *timeout_ms is lowered to its timer. After poll, job_dispatch resumes
 * the job of *slot if what it waited for came (pfd as filled, revents set) or its time is
 * up; when it finished, done runs and *slot is cleared. */
#define JOB_POLLFDS 2
int job_pollfds(const struct job *j, struct pollfd *pfd, int *timeout_ms);
void job_dispatch(struct job **slot, const struct pollfd *pfd);

void job_set_phase(struct job *j, enum job_phase p);
enum job_phase job_phase(const struct job *j);

#endif
