/* libFuzzer target: an OCI bundle's config.json, exec's process.json and update's resources
 * (src/image/runtime_spec.c), which godwit-runtime reads from whoever made them. */
#include <stdint.h>
#include <stdlib.h>

#include "godwit/runtime_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rt_spec s;
	struct gw_err err;
	if (rt_spec_parse((const char *)data, size, &s, &err) == 0 &&
	    (!s.args || !s.args[0] || !s.env || !s.cwd || s.cwd[0] != '/' || !s.root_path ||
	     !s.annotations || s.mem_bytes < RTSPEC_MEM_MIN || s.cpus < 1 ||
	     s.cpus > RTSPEC_CPUS_MAX))
		abort();
	rt_spec_free(&s);
	if (rt_process_parse((const char *)data, size, &s, &err) == 0 &&
	    (!s.args || !s.args[0] || !s.env || !s.cwd || s.cwd[0] != '/'))
		abort();
	rt_spec_free(&s);
	uint64_t mem;
	int cpus;
	if (rt_resources_parse((const char *)data, size, &mem, &cpus, &err) == 0 &&
	    ((mem && mem < RTSPEC_MEM_MIN) || cpus < 0 || cpus > RTSPEC_CPUS_MAX))
		abort();
	return 0;
}
