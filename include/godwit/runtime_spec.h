/* An OCI runtime bundle's config.json (the runtime-spec), as much of it as godwit-runtime
 * maps onto a container VM (docs/oci-runtime.md): the process, the root filesystem, the
 * host name, the VM's size from linux.resources, the annotations. What a VM cannot honour is
 * refused with the field's name, never ignored in silence. The input is untrusted: every
 * length is bounded, every type checked (tests/fuzz/fuzz_runtime_spec.c). */
#ifndef GODWIT_RUNTIME_SPEC_H
#define GODWIT_RUNTIME_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

#define RTSPEC_JSON_MAX (1u << 20)	/* config.json */
#define RTSPEC_ARGS_MAX 4096		/* process.args, process.env entries each */
#define RTSPEC_ANNOTATIONS_MAX 256
#define RTSPEC_MEM_MIN (64ull << 20)	/* the smallest guest the kit boots */
#define RTSPEC_MEM_DEFAULT (512ull << 20)
#define RTSPEC_CPUS_MAX 64
#define RTSPEC_BINDS_MAX 16
#define RTSPEC_RLIMITS_MAX 16		/* bind mounts (copied in: docs/oci-runtime.md) */

struct rt_bind {
	char *src, *dst;	/* both absolute */
};

struct rt_spec {
	char *oci_version;
	char **args;		/* NULL-terminated, at least one */
	char **env;		/* NULL-terminated "K=V" */
	char *cwd;		/* absolute */
	uint32_t uid, gid;
	int terminal;		/* process.terminal */
	char **rlimits;		/* process.rlimits as "RLIMIT_X=SOFT:HARD" (NULL-terminated) */
	char *root_path;	/* root.path as given (relative to the bundle, or absolute) */
	char *hostname;		/* NULL: none given */
	uint64_t mem_bytes;	/* linux.resources.memory.limit, else RTSPEC_MEM_DEFAULT */
	int cpus;		/* ceil(cpu.quota / cpu.period), else 1 */
	char *annotations;	/* the annotations object as JSON text ("{}" when none) */
	/* bind mounts, but /dev/shm (the guest's own tmpfs): the caller copies a file in and
	 * refuses anything else (a VM cannot share the host's directories) */
	struct rt_bind binds[RTSPEC_BINDS_MAX];
	int nbinds;
	char *netns;		/* the network namespace's path to take the interface of, or NULL */
};

/* Parse config.json's text (len bytes, at most RTSPEC_JSON_MAX) into out (free with
 * rt_spec_free, also after a failure). -EINVAL with the offending field named. */
int rt_spec_parse(const char *json, size_t len, struct rt_spec *out, struct gw_err *err);
void rt_spec_free(struct rt_spec *s);

/* `exec --process FILE`'s text: a bare Process object (args, env, cwd, user, terminal) into
 * out's process fields (free with rt_spec_free). */
int rt_process_parse(const char *json, size_t len, struct rt_spec *out, struct gw_err *err);

/* `update --resources FILE`'s text: a LinuxResources object; *mem_bytes and *cpus what its
 * memory.limit and cpu quota/period ask for, 0 where it says nothing. */
int rt_resources_parse(const char *json, size_t len, uint64_t *mem_bytes, int *cpus,
		       struct gw_err *err);

#endif
