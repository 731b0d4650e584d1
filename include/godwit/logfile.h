/* The container's output log (ROOT/containers/NAME/output.log): one record per line, in the
 * CRI log format that kubelet and containerd use:
 *     2026-11-25T18:56:04.123456789Z stdout F the line's text
 * The time is the host's wall clock when the shim received the bytes; F ends a line, P is a
 * partial line that the next record of the stream continues. The shim appends; `godwit logs`
 * and attach replay read. Migration and snapshots carry the file, so logs stay continuous. */
#ifndef GODWIT_LOGFILE_H
#define GODWIT_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

enum log_stream { LOG_STDOUT = 1, LOG_STDERR = 2 };

struct log_record {
	char time[36];		/* RFC 3339 with nanoseconds, as written */
	enum log_stream stream;
	int partial;		/* 1 = P (no newline after text) */
	const char *text;	/* points into the parsed line; not NUL-terminated */
	size_t len;
};

/* Append data from stream as records stamped now_real_ns (splits at newlines). */
int log_append(int fd, enum log_stream stream, int64_t now_real_ns, const char *data, size_t len,
	       struct gw_err *err);

/* Parse one line (without its '\n'). -EINVAL for a malformed record. */
int log_parse(const char *line, size_t len, struct log_record *out);

#endif
