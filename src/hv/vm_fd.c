/* Passing file descriptors to QEMU over QMP (include/godwit/hv_vm.h): getfd names one for an
 * "fd:" URI or address, add-fd puts one into an fd set that "/dev/fdset/N" opens. */
#include "vm_priv.h"

int hv_vm_getfd(struct qmp *q, const char *fdname, int fd, int timeout_ms, struct gw_err *err)
{
	json_object *a = hv_args_str("fdname", fdname);
	int r = qmp_execute_with_fd(q, "getfd", a, fd, NULL, timeout_ms, err);
	json_object_put(a);
	return r;
}

int hv_vm_add_fd(struct qmp *q, int fd, int64_t *fdset_id, int timeout_ms, struct gw_err *err)
{
	json_object *ret = NULL, *id;
	int r = qmp_execute_with_fd(q, "add-fd", NULL, fd, &ret, timeout_ms, err);
	if (r < 0)
		return r;
	/* the id goes into a path and back into remove-fd: a negative one is no set of ours */
	if (!json_object_is_type(ret, json_type_object) ||
	    !json_object_object_get_ex(ret, "fdset-id", &id) ||
	    !json_object_is_type(id, json_type_int) || json_object_get_int64(id) < 0) {
		json_object_put(ret);
		return gw_err_set(err, EPROTO, "add-fd: no fdset-id in QEMU's reply");
	}
	*fdset_id = json_object_get_int64(id);
	json_object_put(ret);
	return 0;
}

int hv_vm_remove_fd(struct qmp *q, int64_t fdset_id, int timeout_ms, struct gw_err *err)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "fdset-id", json_object_new_int64(fdset_id));
	return hv_run(q, "remove-fd", a, NULL, timeout_ms, err);
}
