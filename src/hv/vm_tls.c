/* TLS over QMP (include/godwit/hv_vm.h): QEMU's x509 credentials and the migration stream's
 * use of them (docs/security.md). The NBD server and client take the credentials' id in
 * vm_block.c. */
#include "vm_priv.h"

int hv_tls_creds_add(struct qmp *q, const char *id, const char *dir, int server, int timeout_ms,
		     struct gw_err *err)
{
	json_object *a = hv_args_str("qom-type", "tls-creds-x509");
	json_object_object_add(a, "id", json_object_new_string(id));
	json_object_object_add(a, "dir", json_object_new_string(dir));
	json_object_object_add(a, "endpoint", json_object_new_string(server ? "server" : "client"));
	json_object_object_add(a, "verify-peer", json_object_new_boolean(1));
	return hv_run(q, "object-add", a, NULL, timeout_ms, err);
}

int hv_mig_set_tls(struct qmp *q, const char *tls_creds, const char *hostname, int timeout_ms,
		   struct gw_err *err)
{
	json_object *a = hv_args_str("tls-creds", tls_creds);
	if (hostname)
		json_object_object_add(a, "tls-hostname", json_object_new_string(hostname));
	return hv_run(q, "migrate-set-parameters", a, NULL, timeout_ms, err);
}

int hv_object_del(struct qmp *q, const char *id, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "object-del", hv_args_str("id", id), NULL, timeout_ms, err);
}
