/* libFuzzer target: the control API's line reader (src/common/ctl.c) and the output log's record
 * parser (src/common/logfile.c): both read bytes from outside the shim. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/ctl.h"
#include "godwit/logfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_reader r = { 0 };
	r.cap = size + 1;
	r.buf = malloc(r.cap);
	if (!r.buf)
		return 0;
	memcpy(r.buf, data, size);
	r.len = size;
	json_object *o;
	struct gw_err err;
	while (ctl_reader_next(&r, &o, &err) > 0)
		json_object_put(o);
	ctl_reader_free(&r);

	struct log_record rec;
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (log_parse(p, n, &rec) == 0 && rec.text + rec.len > p + n)
			abort();
		p += n + 1;
	}
	return 0;
}
