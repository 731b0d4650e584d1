/* What both ends of a migration and the snapshot path ask of QEMU's migration: handing it a
 * file descriptor, and waiting for its migration status to settle. */
#include <poll.h>
#include <string.h>

#include "godwit/qmp.h"
#include "godwit/util.h"
#include "migrate.h"

int mig_give_fd(struct container *ct, int fd, struct gw_err *err)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	int r = qmp_execute_with_fd(ct->qmp, "getfd", args, fd, NULL, 5000, err);
	json_object_put(args);
	return r;
}

int mig_wait_qemu(struct container *ct, int timeout_ms, char *status, size_t len,
		  struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		json_object *ret, *v;
		int r = qmp_execute(ct->qmp, "query-migrate", NULL, &ret, 5000, err);
		if (r < 0)
			return r;
		const char *s = json_object_object_get_ex(ret, "status", &v)
					? json_object_get_string(v) : "none";
		snprintf(status, len, "%s", s);
		int settled = !strcmp(s, "completed") || !strcmp(s, "failed") ||
			      !strcmp(s, "cancelled");
		if (!strcmp(s, "failed") && json_object_object_get_ex(ret, "error-desc", &v))
			gw_err_set(err, EIO, "QEMU: %s", json_object_get_string(v));
		json_object_put(ret);
		if (settled)
			return 0;
		if (gw_now_mono_ns() > deadline)
			return gw_err_set(err, ETIMEDOUT, "QEMU's migration still %s after %d s",
					  status, timeout_ms / 1000);
		poll(NULL, 0, 20);
	}
}
