/* A network's record, ROOT/networks/NAME.json: what `network create` was given and the
 * leases of its containers. Written atomically under the networks lock; read back with
 * every field checked, since a record is a file anyone with access to the root can edit. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "godwit/util.h"
#include "hostnet_int.h"

#define RECORD_MAX (1 << 20)

static char *record_path(const char *root, const char *name)
{
	return gw_strdup_printf("%s/networks/%s.json", root, name);
}

int hn_lock(const char *root, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/networks", root);
	return dir ? gw_lock_dir(dir, err) : gw_err_set(err, ENOMEM, "out of memory");
}

int hn_record_lock_read(const char *root, const char *name, struct gw_network *n,
			json_object **leases, struct gw_err *err)
{
	cleanup_close int lock = hn_lock(root, err);
	if (lock < 0)
		return lock;
	int r = hn_record_read(root, name, n, leases, err);
	return r < 0 ? r : steal_fd(lock);
}

int hn_record_exists(const char *root, const char *name, struct gw_err *err)
{
	cleanup_free char *path = record_path(root, name);
	struct stat st;
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : gw_err_sys(err, errno, "stat %s", path);
}

int hn_record_remove(const char *root, const char *name, struct gw_err *err)
{
	cleanup_free char *path = record_path(root, name);
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (unlink(path) < 0 && errno != ENOENT)
		return gw_err_sys(err, errno, "remove %s", path);
	return 0;
}

/* the record's JSON text (malloc'd) */
static char *record_text(const struct gw_network *n, json_object *leases)
{
	char cidr[GW_CIDR_MAX], gw[16];
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(n->name));
	json_object_object_add(o, "bridge", json_object_new_string(n->bridge));
	json_object_object_add(o, "subnet",
			       json_object_new_string(gw_fmt_cidr(n->subnet, n->prefix, cidr)));
	json_object_object_add(o, "gateway", json_object_new_string(gw_fmt_ipv4(n->gateway, gw)));
	json_object_object_add(o, "nat", json_object_new_boolean(n->nat));
	if (n->uplink[0])
		json_object_object_add(o, "uplink", json_object_new_string(n->uplink));
	json_object_object_add(o, "leases", leases ? json_object_get(leases)
						   : json_object_new_object());
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *text = s ? gw_strdup_printf("%s\n", s) : NULL;
	json_object_put(o);
	return text;
}

int hn_record_write(const char *root, const struct gw_network *n, json_object *leases,
		    struct gw_err *err)
{
	cleanup_free char *path = record_path(root, n->name);
	cleanup_free char *text = record_text(n, leases);
	if (!path || !text)
		return gw_err_set(err, ENOMEM, "out of memory");
	return gw_write_file(path, text, strlen(text), 0644, err);
}

/* the string member k of o, NULL when missing or of another type */
static const char *member_str(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int parse_record(json_object *o, const char *name, struct gw_network *n,
			struct gw_err *err)
{
	const char *s;
	json_object *v;
	memset(n, 0, sizeof(*n));
	if (!json_object_is_type(o, json_type_object))
		return gw_err_set(err, EINVAL, "not a JSON object");
	if (!gw_json_streq(json_object_object_get(o, "name"), name))
		return gw_err_set(err, EINVAL, "\"name\" is not \"%s\"", name);
	strcpy(n->name, name);
	hn_bridge_name(name, n->bridge);
	if (!gw_json_streq(json_object_object_get(o, "bridge"), n->bridge))
		return gw_err_set(err, EINVAL, "\"bridge\" is not \"%s\"", n->bridge);
	if (!(s = member_str(o, "subnet")) || gw_parse_cidr(s, &n->subnet, &n->prefix, err) < 0)
		return s ? -EINVAL : gw_err_set(err, EINVAL, "no \"subnet\"");
	if (!(s = member_str(o, "gateway")) || gw_parse_ipv4(s, &n->gateway, err) < 0)
		return s ? -EINVAL : gw_err_set(err, EINVAL, "no \"gateway\"");
	if (!json_object_object_get_ex(o, "nat", &v) || !json_object_is_type(v, json_type_boolean))
		return gw_err_set(err, EINVAL, "\"nat\" must be true or false");
	n->nat = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "uplink", &v)) {
		if (!(s = member_str(o, "uplink")) || strlen(s) >= sizeof(n->uplink))
			return gw_err_set(err, EINVAL, "\"uplink\" must be an interface name");
		strcpy(n->uplink, s);
	}
	return hn_network_check(n, err);
}

/* the record's "leases": checked, and handed out when the caller wants them */
static int parse_leases(json_object *o, const struct gw_network *n, json_object **leases,
			struct gw_err *err)
{
	json_object *l = json_object_object_get(o, "leases");
	int r = hn_leases_check(n, l, err);
	if (r < 0)
		return r;
	if (leases)
		*leases = json_object_get(l);
	return 0;
}

static int parse_file(const char *path, const char *name, struct gw_network *n,
		      json_object **leases, struct gw_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	int r = gw_read_file(path, RECORD_MAX, &buf, &len, err);
	if (r == -ENOENT)
		return gw_err_set(err, ENOENT, "no such network: %s", name);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(buf);
	if (!o || strlen(buf) != len)
		r = gw_err_set(err, EINVAL, "not JSON");
	else if ((r = parse_record(o, name, n, err)) == 0)
		r = parse_leases(o, n, leases, err);
	json_object_put(o);
	return r < 0 ? gw_err_prefix(err, "network record %s is corrupt", path) : 0;
}

int hn_record_read(const char *root, const char *name, struct gw_network *n,
		   json_object **leases, struct gw_err *err)
{
	if (!hn_valid_name(name))
		return hn_bad_name(name, err);
	cleanup_free char *path = record_path(root, name);
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	return parse_file(path, name, n, leases, err);
}

int gw_network_json(const char *root, const char *name, char **out, struct gw_err *err)
{
	cleanup_json json_object *leases = NULL;
	struct gw_network n;
	int r = hn_record_read(root, name, &n, &leases, err);
	if (r < 0)
		return r;
	*out = record_text(&n, leases);
	return *out ? 0 : gw_err_set(err, ENOMEM, "out of memory");
}
