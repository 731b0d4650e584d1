/* godwit-runtime state ID: the runtime-spec's state JSON, from the container's record and
 * the runtime's oci.json beside it. Also the record's loader the other verbs share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci.h"
#include "shimctl.h"
#include "godwit/util.h"

const char *oci_status(enum ct_state s)
{
	switch (s) {
	case CT_CREATED: case CT_INCOMING: return "created";
	case CT_RUNNING: case CT_MIGRATING: return "running";
	case CT_PAUSED: return "paused";
	default: return "stopped";
	}
}

int oci_rec_load(const struct oci_rt *rt, const char *id, struct oci_rec *rec,
		 struct gw_err *err)
{
	memset(rec, 0, sizeof(*rec));
	if (!gw_valid_name(id))
		return gw_err_set(err, EINVAL, "invalid container id \"%.80s\"", id);
	cleanup_free char *path = ct_path(rt->cli.root, id, "oci.json");
	cleanup_free char *txt = NULL;
	int r = path ? gw_read_file(path, 1 << 20, &txt, NULL, err)
		     : gw_err_set(err, ENOMEM, "out of memory");
	if (r == -ENOENT)
		return gw_err_set(err, ENOENT, "container does not exist");
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(txt), *v;
	if (json_object_object_get_ex(o, "bundle", &v) && json_object_is_type(v, json_type_string))
		rec->bundle = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(o, "rootfs", &v) && json_object_is_type(v, json_type_string))
		rec->rootfs = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(o, "created", &v) && json_object_is_type(v, json_type_string))
		rec->created = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(o, "annotations", &v) &&
	    json_object_is_type(v, json_type_object))
		rec->annotations = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!rec->bundle || !rec->rootfs || !rec->created || !rec->annotations) {
		oci_rec_free(rec);
		return gw_err_set(err, EINVAL, "%s: not a godwit-runtime record", path);
	}
	return ct_status_load(rt->cli.root, id, &rec->st, err);
}

int oci_shim_call(struct oci_rt *rt, const char *id, const char *cmd, json_object *args)
{
	struct gw_err err = { 0 };
	int fd = cli_connect(&rt->cli, id, &err);
	if (fd < 0)
		return oci_fail(rt, &err);
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, cmd, args, NULL, NULL, NULL, 10000, &err);
	ctl_reader_free(&rd);
	close(fd);
	return r < 0 ? oci_fail(rt, &err) : 0;
}

void oci_rec_free(struct oci_rec *rec)
{
	free(rec->bundle);
	free(rec->rootfs);
	free(rec->created);
	free(rec->annotations);
	memset(rec, 0, sizeof(*rec));
}

int oci_state(struct oci_rt *rt, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			printf("Usage: godwit-runtime state ID\n\nPrint the container's state as "
			       "the runtime-spec's JSON.\n");
			return 0;
		}
		return oci_failf(rt, "state: want one container ID");
	}
	struct oci_rec rec;
	struct gw_err err = { 0 };
	if (oci_rec_load(rt, argv[1], &rec, &err) < 0)
		return oci_fail(rt, &err);
	const char *status = oci_status(rec.st.state);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ociVersion", json_object_new_string(OCI_VERSION));
	json_object_object_add(o, "id", json_object_new_string(argv[1]));
	json_object_object_add(o, "status", json_object_new_string(status));
	/* the shim: the host process whose exit status is the container's */
	json_object_object_add(o, "pid", json_object_new_int(strcmp(status, "stopped")
							     ? rec.st.shim_pid : 0));
	json_object_object_add(o, "bundle", json_object_new_string(rec.bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(rec.rootfs));
	json_object_object_add(o, "created", json_object_new_string(rec.created));
	json_object_object_add(o, "owner", json_object_new_string(""));
	json_object_object_add(o, "annotations", json_tokener_parse(rec.annotations));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	oci_rec_free(&rec);
	return 0;
}
