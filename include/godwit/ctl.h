/* The control API's transport (spec: docs/api.md): QMP-style JSON objects, one per line, over
 * a unix socket (0600). The shim serves it; the CLI (and the migration source) are clients.
 * Lines are bounded (CTL_LINE_MAX); anything longer or malformed is a protocol error. */
#ifndef GODWIT_CTL_H
#define GODWIT_CTL_H

#include <stddef.h>
#include <json-c/json.h>

#include "godwit/err.h"

#define CTL_LINE_MAX (4 << 20)

struct ctl_reader {
	char *buf;
	size_t len, cap;
};

/* Listen on a fresh unix socket at path (an old socket file is replaced); mode 0600. */
int ctl_listen(const char *path, struct gw_err *err);
/* Connect to the unix socket at path (blocking fd, O_CLOEXEC). */
int ctl_connect(const char *path, struct gw_err *err);

/* Write msg as one line (blocking; the fd may be non-blocking, then it waits with poll, 5 s at
 * most for the peer to read). ctl_send_within: at most timeout_ms for each wait. */
int ctl_send(int fd, json_object *msg, struct gw_err *err);
int ctl_send_within(int fd, json_object *msg, int timeout_ms, struct gw_err *err);

/* Non-blocking: read what is available into r. Returns bytes read, 0 at EOF, -EAGAIN if
 * nothing is available, or another negative errno. */
int ctl_reader_fill(struct ctl_reader *r, int fd, struct gw_err *err);
/* Pop the next complete message: 1 and *out, 0 when none is complete, <0 on a bad line. */
int ctl_reader_next(struct ctl_reader *r, json_object **out, struct gw_err *err);
void ctl_reader_free(struct ctl_reader *r);

/* Blocking: wait up to timeout_ms (<0 = forever) for the next message. -EPIPE at EOF. */
int ctl_recv(struct ctl_reader *r, int fd, int timeout_ms, json_object **out, struct gw_err *err);

/* Client call: send {"execute": cmd, "arguments": args} and wait for the reply. Events that
 * arrive before it are passed to on_event (may be NULL). An {"error": …} reply becomes
 * -EREMOTEIO with its "desc" in err. args is borrowed. */
typedef int (*ctl_event_fn)(json_object *ev, void *opaque);
int ctl_call(int fd, struct ctl_reader *r, const char *cmd, json_object *args, json_object **ret,
	     ctl_event_fn on_event, void *opaque, int timeout_ms, struct gw_err *err);

/* Reply helpers for the server side. */
json_object *ctl_make_return(json_object *ret);	/* takes ret (NULL = {}) */
json_object *ctl_make_error(const char *cls, const char *desc);
json_object *ctl_make_event(const char *name, json_object *data); /* takes data */

#endif
