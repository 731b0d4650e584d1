/* QMP client: one connection to one QEMU's monitor socket. Commands are synchronous (send,
 * wait for the matching return or error, with a timeout); asynchronous events that arrive
 * meanwhile are queued and handed out by qmp_next_event(). Everything QEMU sends is untrusted:
 * lines are bounded, replies are validated. Above src/hv the shim only owns the connection
 * (connect, close, pump and drain events, the wait hook, the greeting's version): commands and
 * event waits go through hv_vm.h's typed calls, and scripts/check-layers.sh fails the build on
 * a qmp_execute, qmp_execute_with_fd or qmp_wait_event call outside src/hv. */
#ifndef GODWIT_QMP_H
#define GODWIT_QMP_H

#include <json-c/json.h>

#include "godwit/err.h"

#define QMP_LINE_MAX (1 << 20) /* a longer line from QEMU is a protocol error */

struct qmp;

/* Connect to the monitor socket at path (retrying until timeout_ms while QEMU creates it),
 * read the greeting and negotiate capabilities (qmp_capabilities). */
int qmp_connect(const char *path, int timeout_ms, struct qmp **out, struct gw_err *err);

/* Execute cmd with args (borrowed; may be NULL). On success *ret (may be NULL to discard)
 * receives a new reference to the "return" value. A QMP error reply becomes -EREMOTEIO with
 * "cmd: <class>: <desc>" in err. timeout_ms <= 0 means the default (30 s). */
int qmp_execute(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
		int timeout_ms, struct gw_err *err);

/* Same, passing fd to QEMU with SCM_RIGHTS alongside the command (for getfd / add-fd). */
int qmp_execute_with_fd(struct qmp *q, const char *cmd, json_object *args, int fd,
			json_object **ret, int timeout_ms, struct gw_err *err);

/* While a command waits for its reply, call wait(arg, fd, ms) instead of sleeping in poll():
 * it must return once fd (the monitor) is readable or ms have passed, and may serve other
 * work meanwhile (the shim keeps the guest's output flowing during a migration). NULL
 * restores the plain poll. wait must not use q. */
void qmp_set_wait(struct qmp *q, void (*wait)(void *arg, int fd, int ms), void *arg);

/* The socket, for poll(); readable means events may be pending: call qmp_pump(). */
int qmp_fd(const struct qmp *q);

/* Read what is available without blocking and queue events. Returns -EPIPE when QEMU closed
 * the monitor. */
int qmp_pump(struct qmp *q, struct gw_err *err);

/* Pop the oldest queued event (new reference, caller puts it) or NULL if none. */
json_object *qmp_next_event(struct qmp *q);

/* Wait up to timeout_ms for an event named `name`; returns 0 and *ev (may be NULL) or
 * -ETIMEDOUT. Other events stay queued. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_object **ev,
		   struct gw_err *err);

/* Like qmp_connect on an already connected socket (taken over, closed on failure): for a
 * socketpair whose other end QEMU got as `-chardev socket,fd=N`, and for tests. */
int qmp_open_fd(int fd, int timeout_ms, struct qmp **out, struct gw_err *err);

/* How many events were dropped because the queue (1024) was full: QEMU flooded faster than
 * the owner called qmp_next_event()/qmp_wait_event(). Worth a warning when it grows. */
unsigned long qmp_events_dropped(const struct qmp *q);

/* The greeting QEMU sent ({"QMP": {"version": ..., "capabilities": ...}}), borrowed. */
json_object *qmp_greeting(const struct qmp *q);
/* The running QEMU's version from its greeting: 0, or -EPROTO when the greeting lacks it. */
int qmp_qemu_version(const struct qmp *q, int *major, int *minor);

/* Close the socket and drop queued events; q may be NULL. */
void qmp_close(struct qmp *q);

/* Parse one line from QEMU into a message and classify it (exposed for tests and the fuzzer):
 * returns QMP_MSG_* or a negative errno for a malformed line. */
enum { QMP_MSG_GREETING = 1, QMP_MSG_RETURN, QMP_MSG_ERROR, QMP_MSG_EVENT };
int qmp_parse_line(const char *line, size_t len, json_object **msg, struct gw_err *err);

#endif
