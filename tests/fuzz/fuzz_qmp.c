/* libFuzzer target for qmp_parse_line() (src/hv/qmp.c): every line QEMU sends goes through it
 * before anything trusts it. The input is fed whole and then split at newlines, as the client
 * does; a classified message must carry the key its class promises. A return value also goes
 * through the query-migrate parser (hv_mig_stats_parse, src/hv/vm_mig_stats.c), whose strings
 * must stay terminated within their buffers and whose figures must stay in range. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/hv_vm.h"
#include "godwit/qmp.h"

static void check_mig_stats(json_object *ret)
{
	struct hv_mig_stats s;
	int r = hv_mig_stats_parse(ret, &s, NULL);
	if ((r < 0) != !json_object_is_type(ret, json_type_object) ||
	    !memchr(s.status_name, 0, sizeof(s.status_name)) ||
	    !memchr(s.error_desc, 0, sizeof(s.error_desc)) || s.status > HV_MIG_OTHER ||
	    (uint64_t)INT64_MAX < s.transferred || !isfinite(s.mbps) || s.mbps < 0 ||
	    !isfinite(s.dirty_rate) || s.dirty_rate < 0 ||
	    (s.status != HV_MIG_OTHER && hv_mig_status_from_name(s.status_name) != s.status))
		__builtin_trap();
}

static void check(const char *line, size_t len)
{
	struct gw_err err = { 0 };
	json_object *msg = NULL, *v;
	int kind = qmp_parse_line(line, len, &msg, &err);
	if (kind < 0) {
		if (msg || !err.msg[0])
			__builtin_trap();
		return;
	}
	static const char *const key[] = { NULL, "QMP", "return", "error", "event" };
	if (kind > QMP_MSG_EVENT || !msg || !json_object_object_get_ex(msg, key[kind], &v))
		__builtin_trap();
	if (kind == QMP_MSG_ERROR) {
		json_object *cls, *desc;
		if (!json_object_object_get_ex(v, "class", &cls) ||
		    !json_object_object_get_ex(v, "desc", &desc) || !json_object_get_string(cls) ||
		    !json_object_get_string(desc))
			__builtin_trap();
	}
	if (kind == QMP_MSG_RETURN)
		check_mig_stats(v);
	json_object_put(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	check(s, size);
	size_t off = 0;
	while (off < size) {
		const char *nl = memchr(s + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (s + off)) : size - off;
		check(s + off, len);
		off += len + 1;
	}
	return 0;
}
