/* What the typed QMP calls (src/hv/vm*.c, include/godwit/hv_vm.h) share. */
#ifndef GODWIT_HV_VM_PRIV_H
#define GODWIT_HV_VM_PRIV_H

#include "godwit/hv_vm.h"

/* qmp_execute(cmd, args), then args (may be NULL) is put: every call site builds its arguments
 * and hands them over in one line. */
int hv_run(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
	   int timeout_ms, struct gw_err *err);
/* {key: val} */
json_object *hv_args_str(const char *key, const char *val);

#endif
