/* The destination's vCPUs ahead of the move's own threads (docs/migration-policy.md, "The
 * guest's CPU at the destination"). Once a destination guest runs during a move (after a
 * post-copy switch, or an early resume) it competes for the host's cores with the threads that
 * bring its pages: the source QEMU's migration thread, this QEMU's listener, both shims. A
 * vCPU that waits for a page sleeps and gives its core to them anyway; one that could run but
 * is not scheduled is a pause the guest sees. So the destination shim raises its vCPU threads
 * by MIG_VCPU_NICE when its QEMU starts and puts them back to the shim's own nice (the one QEMU
 * started with; 0 unless godwit ran under `nice`) when the move has ended
 * (post-copy's last page in, or pre-copy's hand-over acknowledged). Measured on this machine
 * (2 cores, TCG, a 1 GiB guest rewriting 256 MiB flat out, `--postcopy`, one at a time):
 * heartbeat pause at the switch median 84 ms raised against 158 ms not, total time unchanged
 * (docs/benchmarks.md §2f has the bench's figures).
 * GODWIT_MIG_VCPU_NICE (-20 to 0) in the destination shim's environment changes the step (0
 * turns the boost off: for measurements). */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "godwit/qmp.h"
#include "migrate.h"

#define MIG_VCPU_NICE (-10)
#define MIG_VCPU_MAX 64

static void set_vcpu_nice(struct container *ct, int nice, int boosted)
{
	json_object *cpus = NULL;
	struct gw_err e = { 0 };
	if (!ct->qmp || qmp_execute(ct->qmp, "query-cpus-fast", NULL, &cpus, 5000, &e) < 0) {
		fprintf(stderr, "shim %s: vCPU priority: %s\n", ct->cfg.name,
			e.msg[0] ? e.msg : "no QMP");
		return;
	}
	int done = 0;
	size_t n = json_object_is_type(cpus, json_type_array) ? json_object_array_length(cpus) : 0;
	for (size_t i = 0; i < n && i < MIG_VCPU_MAX; i++) {
		json_object *c = json_object_array_get_idx(cpus, i), *t;
		if (!json_object_object_get_ex(c, "thread-id", &t) ||
		    !json_object_is_type(t, json_type_int))
			continue;
		int64_t tid = json_object_get_int64(t);
		/* only a thread of our own QEMU, whatever its reply says */
		char task[64];
		snprintf(task, sizeof(task), "/proc/%d/task/%lld", (int)ct->qemu_pid, (long long)tid);
		if (tid <= 0 || tid > 0x7fffffff || ct->qemu_pid <= 0 || access(task, F_OK) < 0)
			continue;
		if (setpriority(PRIO_PROCESS, (id_t)tid, nice) == 0)
			done++;
		else
			fprintf(stderr, "shim %s: vCPU thread %lld: setpriority: %m\n", ct->cfg.name,
				(long long)tid);
	}
	json_object_put(cpus);
	fprintf(stderr, "shim %s: %d vCPU thread(s) at nice %d%s\n", ct->cfg.name, done, nice,
		boosted ? " for the move" : "");
}

/* the shim's own nice, which its QEMU inherited */
static int own_nice(void)
{
	errno = 0;
	int n = getpriority(PRIO_PROCESS, 0);
	return errno ? 0 : n;
}

static int boost_nice(void)
{
	return (int)mig_env_long("GODWIT_MIG_VCPU_NICE", -20, 0, MIG_VCPU_NICE, MIG_VCPU_NICE);
}

void mig_vcpu_boost(struct container *ct)
{
	int step = boost_nice();
	if (step) {
		int nice = own_nice() + step;
		set_vcpu_nice(ct, nice < -20 ? -20 : nice, 1);
	}
}

void mig_vcpu_unboost(struct container *ct)
{
	if (boost_nice())
		set_vcpu_nice(ct, own_nice(), 0);
}
