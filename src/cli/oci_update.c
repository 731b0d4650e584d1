/* godwit-runtime update [--resources FILE|-] [--memory N] [--cpu-quota N --cpu-period N]
 * [other runc flags] ID: runc's update, for a container that is a VM. Its memory and its
 * vCPUs are the VM's, fixed while it runs (no balloon, no hotplug): a request that keeps them
 * succeeds, one that would change them is refused and says so; the limits that confine host
 * processes (CPU shares, pids, block I/O weight, cpusets, ...) have nothing to confine here
 * and are accepted, as create accepts them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci.h"
#include "godwit/container.h"
#include "godwit/runtime_spec.h"
#include "godwit/util.h"

static void usage(void)
{
	printf("Usage: godwit-runtime update [OPTIONS] ID\n\n"
	       "Update a container's resources: its VM's memory and vCPUs cannot change while it\n"
	       "runs (a change is refused); limits for host processes are accepted.\n\n"
	       "  -r, --resources FILE  a runtime-spec LinuxResources object (\"-\": stdin)\n"
	       "      --memory BYTES    the memory limit\n"
	       "      --cpu-quota N, --cpu-period N  CPU time per period: vCPUs = ceil(quota/period)\n"
	       "      --cpu-share, --cpuset-cpus, --cpuset-mems, --pids-limit, --blkio-weight,\n"
	       "      --memory-reservation, --memory-swap, --kernel-memory ...  accepted\n"
	       "  -h, --help            this help\n");
}

static int read_resources(const char *path, uint64_t *mem, int *cpus, struct gw_err *err)
{
	cleanup_free char *txt = NULL;
	size_t len = 0;
	int r;
	if (!strcmp(path, "-")) {
		size_t cap = RTSPEC_JSON_MAX + 1;
		ssize_t m = 0;
		if (!(txt = malloc(cap)))
			return gw_err_set(err, ENOMEM, "out of memory");
		while (len < cap && (m = read(0, txt + len, cap - len)) > 0)
			len += (size_t)m;
		if (m < 0)
			return gw_err_sys(err, errno, "resources from stdin");
	} else if ((r = gw_read_file(path, RTSPEC_JSON_MAX, &txt, &len, err)) < 0) {
		return r;
	}
	return rt_resources_parse(txt, len, mem, cpus, err);
}

int oci_update(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resources", required_argument, NULL, 'r' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpu-quota", required_argument, NULL, 'q' },
		{ "cpu-period", required_argument, NULL, 'p' },
		{ "cpu-share", required_argument, NULL, 'x' },
		{ "cpu-rt-period", required_argument, NULL, 'x' },
		{ "cpu-rt-runtime", required_argument, NULL, 'x' },
		{ "cpuset-cpus", required_argument, NULL, 'x' },
		{ "cpuset-mems", required_argument, NULL, 'x' },
		{ "pids-limit", required_argument, NULL, 'x' },
		{ "blkio-weight", required_argument, NULL, 'x' },
		{ "memory-reservation", required_argument, NULL, 'x' },
		{ "memory-swap", required_argument, NULL, 'x' },
		{ "kernel-memory", required_argument, NULL, 'x' },
		{ "kernel-memory-tcp", required_argument, NULL, 'x' },
		{ "l3-cache-schema", required_argument, NULL, 'x' },
		{ "mem-bw-schema", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *res = NULL;
	long long mem = 0, quota = 0, period = 0;
	char *end;
	int c;
	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': res = optarg; break;
		case 'm': case 'q': case 'p': {
			long long v = strtoll(optarg, &end, 10);
			if (*end || !*optarg)
				return oci_failf(rt, "update: invalid number \"%.32s\"", optarg);
			*(c == 'm' ? &mem : c == 'q' ? &quota : &period) = v;
			break;
		}
		case 'x': break;
		case 'h': usage(); return 0;
		default: return oci_failf(rt, "update: invalid option (godwit-runtime update -h)");
		}
	}
	if (argc - optind != 1)
		return oci_failf(rt, "update: want one container ID");
	const char *id = argv[optind];
	struct gw_err err = { 0 };
	struct oci_rec rec;
	if (oci_rec_load(rt, id, &rec, &err) < 0)
		return oci_fail(rt, &err);
	enum ct_state s = rec.st.state;
	oci_rec_free(&rec);
	if (s == CT_STOPPED)
		return oci_failf(rt, "container not running");
	uint64_t want_mem = 0;
	int want_cpus = 0;
	if (res && read_resources(res, &want_mem, &want_cpus, &err) < 0)
		return oci_fail(rt, &err);
	if (mem > 0)
		want_mem = (uint64_t)mem & ~((1ull << 20) - 1);
	if (quota > 0 && period > 0)
		want_cpus = (int)(quota / period + (quota % period != 0));
	struct ct_config cfg = { 0 };
	if (ct_config_load(rt->cli.root, id, &cfg, &err) < 0)
		return oci_fail(rt, &err);
	int rc = 0;
	if (want_mem && want_mem != cfg.mem_bytes)
		rc = oci_failf(rt, "update: memory limit %llu: the container's VM has %llu bytes and "
			       "cannot change them while it runs", (unsigned long long)want_mem,
			       (unsigned long long)cfg.mem_bytes);
	else if (want_cpus && want_cpus != cfg.cpus)
		rc = oci_failf(rt, "update: %d CPUs: the container's VM has %d vCPUs and cannot "
			       "change them while it runs", want_cpus, cfg.cpus);
	ct_config_free(&cfg);
	return rc;
}
