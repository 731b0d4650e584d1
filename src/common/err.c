/* Error objects (include/godwit/err.h): the message is written where the cause is known and
 * callers prepend their context. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "godwit/err.h"

static int err_vset(struct gw_err *err, int code, int with_errno, const char *fmt, va_list ap)
{
	if (code <= 0)
		code = code < 0 ? -code : EIO;
	if (!err)
		return -code;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
	return -code;
}

int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int gw_err_sys(struct gw_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

int gw_err_prefix(struct gw_err *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	char ctx[GW_ERR_MSG_MAX];
	char old[GW_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	size_t n = strlen(ctx);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, ctx, n);
	memcpy(err->msg + n, ": ", 2);
	size_t rest = sizeof(err->msg) - n - 3;
	size_t ol = strnlen(old, rest);
	memcpy(err->msg + n + 2, old, ol);
	err->msg[n + 2 + ol] = '\0';
	if (!err->code)
		err->code = EIO;
	return -err->code;
}

void gw_err_clear(struct gw_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
