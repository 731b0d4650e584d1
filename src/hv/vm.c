/* The VM's run state over QMP (include/godwit/hv_vm.h): cont, stop, quit, query-status; and
 * hv_run, the one way the typed calls send a command. */
#include <string.h>

#include "godwit/util.h"
#include "vm_priv.h"

int hv_run(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
	   int timeout_ms, struct gw_err *err)
{
	int r = qmp_execute(q, cmd, args, ret, timeout_ms, err);
	json_object_put(args);
	return r;
}

json_object *hv_args_str(const char *key, const char *val)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, key, json_object_new_string(val));
	return a;
}

int hv_vm_cont(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "cont", NULL, NULL, timeout_ms, err);
}

int hv_vm_stop(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "stop", NULL, NULL, timeout_ms, err);
}

int hv_vm_quit(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "quit", NULL, NULL, timeout_ms, err);
}

int hv_vm_announce(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "initial", json_object_new_int(50));
	json_object_object_add(a, "max", json_object_new_int(350));
	json_object_object_add(a, "rounds", json_object_new_int(5));
	json_object_object_add(a, "step", json_object_new_int(100));
	return hv_run(q, "announce-self", a, NULL, timeout_ms, err);
}

int hv_vm_query_status(struct qmp *q, struct hv_vm_status *st, int timeout_ms,
		       struct gw_err *err)
{
	memset(st, 0, sizeof(*st));
	json_object *ret = NULL, *v;
	int r = hv_run(q, "query-status", NULL, &ret, timeout_ms, err);
	if (r < 0)
		return r;
	if (!json_object_is_type(ret, json_type_object)) {
		json_object_put(ret);
		return gw_err_set(err, EPROTO, "query-status: QEMU's reply is not an object");
	}
	/* a QEMU that says anything but true has not been seen running */
	st->running = json_object_object_get_ex(ret, "running", &v) &&
		      json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	if (json_object_object_get_ex(ret, "status", &v) && json_object_is_type(v, json_type_string))
		snprintf(st->status, sizeof(st->status), "%s", json_object_get_string(v));
	json_object_put(ret);
	return 0;
}
