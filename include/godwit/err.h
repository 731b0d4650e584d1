/* Error objects: a failing call fills one with the message written where the cause is known
 * and returns a negative errno; callers add context with gw_err_prefix(); the top prints it once.
 * Used by every subsystem (host side and guest agent). */
#ifndef GODWIT_ERR_H
#define GODWIT_ERR_H

#include <errno.h>

#define GW_ERR_MSG_MAX 1024

/* Exit status for godwit's own errors (bad flags, a failed request), as docker uses. */
#define GW_EXIT_ERROR 125

struct gw_err {
	int code;		/* positive errno, 0 = no error */
	char msg[GW_ERR_MSG_MAX];
};

/* Fill err (may be NULL) with code and a printf-style message; returns -code (or -EIO if
 * code is 0) so that callers can write `return gw_err_set(err, EINVAL, "...")`. */
int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like gw_err_set, appending ": strerror(code)". */
int gw_err_sys(struct gw_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend "context: " to an existing message; returns -err->code. */
int gw_err_prefix(struct gw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear an error object. */
void gw_err_clear(struct gw_err *err);

#endif
