/* How busy the guest's vCPUs were lately: what decides whether a default move skips the guest's
 * free pages (docs/migration-policy.md, "Free-page hints"). The shim's loop samples the run time
 * of QEMU's vCPU threads ("CPU N/TCG", "CPU N/KVM": QEMU runs with debug-threads=on) from
 * /proc/PID/task/TID/schedstat at most every VCPU_SAMPLE_NS; a move compares a fresh reading
 * with the sample at least that old. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/util.h"
#include "shim.h"

#define VCPU_SAMPLE_NS 250000000LL

/* The summed run time of pid's vCPU threads in ns; -1 if there is none or /proc says nothing. */
static int vcpu_run_ns(pid_t pid, uint64_t *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int found = 0;
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *comm = NULL, *st = NULL;
		cleanup_free char *cp = gw_strdup_printf("%s/%s/comm", path, e->d_name);
		cleanup_free char *sp = gw_strdup_printf("%s/%s/schedstat", path, e->d_name);
		if (!cp || !sp || gw_read_file(cp, 64, &comm, NULL, NULL) < 0 ||
		    strncmp(comm, "CPU ", 4) || gw_read_file(sp, 128, &st, NULL, NULL) < 0)
			continue;
		char *end;
		unsigned long long ns = strtoull(st, &end, 10);
		if (end != st) {
			sum += ns;
			found++;
		}
	}
	closedir(d);
	*out = sum;
	return found ? 0 : -1;
}

void shim_vcpu_sample(struct container *ct)
{
	int64_t now = gw_now_mono_ns();
	uint64_t run;
	if (!ct->cfg.free_page_hints || ct->qemu_pid <= 0 ||
	    (ct->vcpu.t1 && now - ct->vcpu.t1 < VCPU_SAMPLE_NS) ||
	    vcpu_run_ns(ct->qemu_pid, &run) < 0)
		return;
	ct->vcpu.t0 = ct->vcpu.t1;
	ct->vcpu.run0 = ct->vcpu.run1;
	ct->vcpu.t1 = now;
	ct->vcpu.run1 = run;
}

double shim_vcpu_load(struct container *ct)
{
	int64_t now = gw_now_mono_ns();
	uint64_t run;
	if (ct->qemu_pid <= 0 || ct->cfg.cpus < 1 || vcpu_run_ns(ct->qemu_pid, &run) < 0)
		return -1;
	/* the newest sample that is old enough, else the one before it */
	int64_t t = ct->vcpu.t1;
	uint64_t r = ct->vcpu.run1;
	if (!t || now - t < VCPU_SAMPLE_NS) {
		t = ct->vcpu.t0;
		r = ct->vcpu.run0;
	}
	if (!t || now - t < VCPU_SAMPLE_NS || run < r)
		return -1;
	return (double)(run - r) / (double)(now - t) / ct->cfg.cpus;
}
