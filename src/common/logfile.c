/* The container's output log in CRI format (include/godwit/logfile.h): the shim writes a record
 * per line of container output as it arrives; readers parse records back. */
#include <string.h>
#include <sys/uio.h>

#include "godwit/logfile.h"
#include "godwit/util.h"

static const char *stream_name(enum log_stream s)
{
	return s == LOG_STDERR ? "stderr" : "stdout";
}

int log_append(int fd, enum log_stream stream, int64_t now_real_ns, const char *data, size_t len,
	       struct gw_err *err)
{
	char ts[36];
	gw_fmt_rfc3339(now_real_ns, ts);
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		char head[64];
		int hl = snprintf(head, sizeof(head), "%s %s %c ", ts, stream_name(stream),
				  nl ? 'F' : 'P');
		/* one writev per record: appends from one writer never interleave */
		struct iovec iov[3] = {
			{ head, (size_t)hl }, { (void *)data, n }, { "\n", 1 },
		};
		ssize_t want = hl + (ssize_t)n + 1, w = writev(fd, iov, 3);
		if (w != want)
			return gw_err_sys(err, w < 0 ? errno : EIO, "write output log");
		data += n + (nl ? 1 : 0);
		len -= n + (nl ? 1 : 0);
	}
	return 0;
}

int log_parse(const char *line, size_t len, struct log_record *out)
{
	const char *sp = memchr(line, ' ', len);
	if (!sp || sp == line || (size_t)(sp - line) >= sizeof(out->time))
		return -EINVAL;
	memcpy(out->time, line, (size_t)(sp - line));
	out->time[sp - line] = '\0';
	const char *p = sp + 1, *end = line + len;
	if (end - p >= 7 && !memcmp(p, "stdout ", 7))
		out->stream = LOG_STDOUT;
	else if (end - p >= 7 && !memcmp(p, "stderr ", 7))
		out->stream = LOG_STDERR;
	else
		return -EINVAL;
	p += 7;
	if (end - p < 2 || (p[0] != 'F' && p[0] != 'P') || p[1] != ' ')
		return -EINVAL;
	out->partial = p[0] == 'P';
	out->text = p + 2;
	out->len = (size_t)(end - (p + 2));
	return 0;
}
