/* Block devices over QMP (include/godwit/hv_vm.h): a drive's node, QEMU's NBD server and its
 * exports, NBD client nodes, and the mirror job that carries a moving container's disk
 * (docs/migration-protocol.md §2a). */
#include <string.h>

#include "godwit/util.h"
#include "vm_priv.h"

/* query-block and query-block-jobs answer with an array of objects named by "device": the
 * reply in *ret (the caller puts it) and the entry for device in *entry (NULL: none) */
static int query_device(struct qmp *q, const char *cmd, const char *device, json_object **ret,
			json_object **entry, int timeout_ms, struct gw_err *err)
{
	*ret = *entry = NULL;
	int r = hv_run(q, cmd, NULL, ret, timeout_ms, err);
	size_t n = r == 0 && json_object_is_type(*ret, json_type_array)
			   ? json_object_array_length(*ret) : 0;
	for (size_t i = 0; i < n && !*entry; i++) {
		json_object *e = json_object_array_get_idx(*ret, i), *v;
		if (json_object_object_get_ex(e, "device", &v) && gw_json_streq(v, device))
			*entry = e;
	}
	return r;
}

int hv_block_node_of(struct qmp *q, const char *device, char *node, size_t len,
		     int timeout_ms, struct gw_err *err)
{
	json_object *ret, *b, *ins, *nn;
	int r = query_device(q, "query-block", device, &ret, &b, timeout_ms, err);
	if (r < 0)
		return r;
	if (!b || !json_object_object_get_ex(b, "inserted", &ins) ||
	    !json_object_object_get_ex(ins, "node-name", &nn) ||
	    !json_object_is_type(nn, json_type_string))
		r = gw_err_set(err, ENOENT, "QEMU has no inserted %s", device);
	/* the name goes back to QEMU in block-export-add: cut, it would name another node */
	else if ((size_t)json_object_get_string_len(nn) >= len)
		r = gw_err_set(err, EPROTO, "query-block: %s's node name too long", device);
	else
		snprintf(node, len, "%s", json_object_get_string(nn));
	json_object_put(ret);
	return r;
}

int hv_nbd_server_start_fd(struct qmp *q, const char *fdname, int max_connections,
			   const char *tls_creds, int timeout_ms, struct gw_err *err)
{
	json_object *addr = json_object_new_object();
	json_object_object_add(addr, "type", json_object_new_string("fd"));
	json_object_object_add(addr, "data", hv_args_str("str", fdname));
	json_object *a = json_object_new_object();
	json_object_object_add(a, "addr", addr);
	json_object_object_add(a, "max-connections", json_object_new_int(max_connections));
	if (tls_creds)
		json_object_object_add(a, "tls-creds", json_object_new_string(tls_creds));
	return hv_run(q, "nbd-server-start", a, NULL, timeout_ms, err);
}

int hv_nbd_server_stop(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "nbd-server-stop", NULL, NULL, timeout_ms, err);
}

int hv_block_export_add_nbd(struct qmp *q, const char *id, const char *node, const char *name,
			    int writable, int timeout_ms, struct gw_err *err)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "type", json_object_new_string("nbd"));
	json_object_object_add(a, "id", json_object_new_string(id));
	json_object_object_add(a, "node-name", json_object_new_string(node));
	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "writable", json_object_new_boolean(writable));
	return hv_run(q, "block-export-add", a, NULL, timeout_ms, err);
}

int hv_block_export_del(struct qmp *q, const char *id, int hard, int timeout_ms,
			struct gw_err *err)
{
	json_object *a = hv_args_str("id", id);
	json_object_object_add(a, "mode", json_object_new_string(hard ? "hard" : "safe"));
	return hv_run(q, "block-export-del", a, NULL, timeout_ms, err);
}

int hv_block_export_count(struct qmp *q, size_t *n, int timeout_ms, struct gw_err *err)
{
	json_object *ret = NULL;
	*n = 0;
	int r = hv_run(q, "query-block-exports", NULL, &ret, timeout_ms, err);
	if (r < 0)
		return r;
	*n = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
	json_object_put(ret);
	return 0;
}

int hv_blockdev_add_nbd(struct qmp *q, const char *node, const char *host, uint16_t port,
			const char *export_name, const char *tls_creds, int timeout_ms,
			struct gw_err *err)
{
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	json_object *server = json_object_new_object();
	json_object_object_add(server, "type", json_object_new_string("inet"));
	json_object_object_add(server, "host", json_object_new_string(host));
	json_object_object_add(server, "port", json_object_new_string(portstr));
	json_object *a = json_object_new_object();
	json_object_object_add(a, "driver", json_object_new_string("nbd"));
	json_object_object_add(a, "node-name", json_object_new_string(node));
	json_object_object_add(a, "server", server);
	json_object_object_add(a, "export", json_object_new_string(export_name));
	if (tls_creds) {
		json_object_object_add(a, "tls-creds", json_object_new_string(tls_creds));
		json_object_object_add(a, "tls-hostname", json_object_new_string(host));
	}
	return hv_run(q, "blockdev-add", a, NULL, timeout_ms, err);
}

int hv_blockdev_del(struct qmp *q, const char *node, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "blockdev-del", hv_args_str("node-name", node), NULL, timeout_ms, err);
}

int hv_blockdev_mirror(struct qmp *q, const struct hv_mirror *m, int timeout_ms,
		       struct gw_err *err)
{
	json_object *a = hv_args_str("job-id", m->job_id);
	json_object_object_add(a, "device", json_object_new_string(m->device));
	json_object_object_add(a, "target", json_object_new_string(m->target));
	json_object_object_add(a, "sync", json_object_new_string(
		m->sync == HV_MIRROR_SYNC_TOP ? "top" : "full"));
	json_object_object_add(a, "copy-mode", json_object_new_string(
		m->copy_mode == HV_MIRROR_WRITE_BLOCKING ? "write-blocking" : "background"));
	return hv_run(q, "blockdev-mirror", a, NULL, timeout_ms, err);
}

int hv_block_job_cancel(struct qmp *q, const char *job, int force, int timeout_ms,
			struct gw_err *err)
{
	json_object *a = hv_args_str("device", job);
	json_object_object_add(a, "force", json_object_new_boolean(force));
	return hv_run(q, "block-job-cancel", a, NULL, timeout_ms, err);
}

int hv_block_job_ready(struct qmp *q, const char *job, int timeout_ms, struct gw_err *err)
{
	json_object *ret, *j, *v;
	int r = query_device(q, "query-block-jobs", job, &ret, &j, timeout_ms, err);
	if (r < 0)
		return r;
	r = !j ? -ENOENT
	       : json_object_object_get_ex(j, "ready", &v) &&
			 json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	json_object_put(ret);
	return r;
}
