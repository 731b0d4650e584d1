/* The migration protocol's control messages (docs/migration-protocol.md §1 table, §3 CONFIG):
 * HELLO with the version check, CONFIG built and validated field by field, PREPARE and ABORT.
 * Framing and streams are in protocol.c. */
#include <string.h>

#include "godwit/migproto.h"
#include "godwit/util.h"
#include "godwit/version.h"

int mig_hello(struct mig_conn *c, uint64_t features, uint64_t *common, char peer_sw[64],
	      struct gw_err *err)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return gw_err_set(err, ENOMEM, "out of memory");
	json_object_object_add(o, "proto", json_object_new_int(MIG_VERSION));
	json_object_object_add(o, "features", json_object_new_int64((int64_t)features));
	json_object_object_add(o, "software", json_object_new_string(GODWIT_VERSION));
	int r = mig_send_json(c, MIG_HELLO, o, err);
	json_object_put(o);
	if (r < 0)
		return r;
	if ((r = mig_recv_json(c, MIG_HELLO, &o, err)) < 0)
		return r;
	uint64_t proto = 0, feat = 0;
	char sw[64];
	if ((r = mig_json_u64(o, "proto", &proto, err)) < 0 ||
	    (r = mig_json_u64(o, "features", &feat, err)) < 0 ||
	    (r = mig_json_str(o, "software", sw, sizeof(sw), err)) < 0) {
		json_object_put(o);
		return gw_err_prefix(err, "HELLO");
	}
	json_object_put(o);
	if (proto != MIG_VERSION)
		return gw_err_set(err, EPROTONOSUPPORT, "peer (godwit %s) speaks migration protocol "
				  "%llu, this godwit speaks %u", sw, (unsigned long long)proto,
				  MIG_VERSION);
	*common = features & feat;
	if (peer_sw)
		memcpy(peer_sw, sw, sizeof(sw));
	return 0;
}

static const char *const kind_names[] = { "offline", "live", "postcopy" };

const char *mig_kind_name(enum mig_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "unknown";
}

struct json_object *mig_config_to_json(const struct mig_config *cfg)
{
	struct json_object *o = json_object_new_object(), *a;
	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(cfg->name));
	json_object_object_add(o, "image", json_object_new_string(cfg->image));
	json_object_object_add(o, "memory", json_object_new_int64((int64_t)cfg->memory));
	json_object_object_add(o, "cpus", json_object_new_int(cfg->cpus));
	json_object_object_add(o, "disks", a = json_object_new_array());
	for (int i = 0; i < cfg->n_disks && a; i++) {
		struct json_object *d = json_object_new_object();
		json_object_object_add(d, "id", json_object_new_string(cfg->disks[i].id));
		json_object_object_add(d, "size", json_object_new_int64((int64_t)cfg->disks[i].size));
		json_object_array_add(a, d);
	}
	json_object_object_add(o, "nics", a = json_object_new_array());
	for (int i = 0; i < cfg->n_nics && a; i++) {
		struct json_object *n = json_object_new_object();
		json_object_object_add(n, "mac", json_object_new_string(cfg->macs[i]));
		json_object_array_add(a, n);
	}
	json_object_object_add(o, "agent", cfg->agent ? json_object_get(cfg->agent)
						      : json_object_new_object());
	json_object_object_add(o, "kind", json_object_new_string(mig_kind_name(cfg->kind)));
	struct json_object *caps = json_object_new_object();
	json_object_object_add(caps, "xbzrle", json_object_new_boolean(cfg->cap_xbzrle));
	json_object_object_add(caps, "postcopy-ram", json_object_new_boolean(cfg->cap_postcopy));
	json_object_object_add(caps, "auto-converge",
			       json_object_new_boolean(cfg->cap_auto_converge));
	json_object_object_add(o, "caps", caps);
	return o;
}

static int valid_mac(const char *s)
{
	if (strlen(s) != 17)
		return 0;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
			return 0;
	}
	return 1;
}

static int valid_image_id(const char *s)
{
	if (strncmp(s, "sha256:", 7) || strlen(s) != 71)
		return 0;
	return strspn(s + 7, "0123456789abcdef") == 64;
}

static struct json_object *get_array(struct json_object *o, const char *key, size_t max,
				     struct gw_err *err)
{
	struct json_object *a;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array)) {
		gw_err_set(err, EPROTO, "field \"%s\" missing or not an array", key);
		return NULL;
	}
	if (json_object_array_length(a) > max) {
		gw_err_set(err, EPROTO, "field \"%s\" has %zu entries, at most %zu allowed", key,
			   json_object_array_length(a), max);
		return NULL;
	}
	return a;
}

static int config_parse(struct json_object *o, struct mig_config *cfg, struct gw_err *err)
{
	uint64_t cpus;
	char kind[16];
	int r;
	if ((r = mig_json_str(o, "name", cfg->name, sizeof(cfg->name), err)) < 0 ||
	    (r = mig_json_str(o, "image", cfg->image, sizeof(cfg->image), err)) < 0 ||
	    (r = mig_json_u64(o, "memory", &cfg->memory, err)) < 0 ||
	    (r = mig_json_u64(o, "cpus", &cpus, err)) < 0 ||
	    (r = mig_json_str(o, "kind", kind, sizeof(kind), err)) < 0)
		return r;
	if (!gw_valid_name(cfg->name))
		return gw_err_set(err, EPROTO, "invalid container name \"%s\"", cfg->name);
	if (!valid_image_id(cfg->image))
		return gw_err_set(err, EPROTO, "invalid image id \"%s\" (want sha256:<64 hex>)",
				  cfg->image);
	if (cfg->memory < (16ull << 20) || cfg->memory > (1ull << 40))
		return gw_err_set(err, EPROTO, "memory %llu bytes out of range (16 MiB to 1 TiB)",
				  (unsigned long long)cfg->memory);
	if (cpus < 1 || cpus > 256)
		return gw_err_set(err, EPROTO, "cpus %llu out of range (1 to 256)",
				  (unsigned long long)cpus);
	cfg->cpus = (int)cpus;
	cfg->kind = (enum mig_kind)-1;
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (!strcmp(kind, kind_names[i]))
			cfg->kind = (enum mig_kind)i;
	if ((int)cfg->kind < 0)
		return gw_err_set(err, EPROTO, "unknown migration kind \"%s\"", kind);

	struct json_object *a = get_array(o, "disks", MIG_MAX_DISKS, err);
	if (!a)
		return -EPROTO;
	cfg->n_disks = (int)json_object_array_length(a);
	for (int i = 0; i < cfg->n_disks; i++) {
		struct json_object *d = json_object_array_get_idx(a, (size_t)i);
		if (!json_object_is_type(d, json_type_object) ||
		    mig_json_str(d, "id", cfg->disks[i].id, sizeof(cfg->disks[i].id), err) < 0 ||
		    mig_json_u64(d, "size", &cfg->disks[i].size, err) < 0)
			return gw_err_set(err, EPROTO, "disks[%d]: not {\"id\":string,\"size\":int}", i);
		if (!gw_valid_name(cfg->disks[i].id))
			return gw_err_set(err, EPROTO, "disks[%d]: invalid id", i);
	}
	if (!(a = get_array(o, "nics", MIG_MAX_NICS, err)))
		return -EPROTO;
	cfg->n_nics = (int)json_object_array_length(a);
	for (int i = 0; i < cfg->n_nics; i++) {
		struct json_object *n = json_object_array_get_idx(a, (size_t)i);
		if (!json_object_is_type(n, json_type_object) ||
		    mig_json_str(n, "mac", cfg->macs[i], sizeof(cfg->macs[i]), err) < 0 ||
		    !valid_mac(cfg->macs[i]))
			return gw_err_set(err, EPROTO, "nics[%d]: missing or malformed MAC", i);
	}
	struct json_object *caps, *agent;
	if (!json_object_object_get_ex(o, "caps", &caps) ||
	    !json_object_is_type(caps, json_type_object))
		return gw_err_set(err, EPROTO, "field \"caps\" missing or not an object");
	if ((r = mig_json_bool(caps, "xbzrle", &cfg->cap_xbzrle, err)) < 0 ||
	    (r = mig_json_bool(caps, "postcopy-ram", &cfg->cap_postcopy, err)) < 0 ||
	    (r = mig_json_bool(caps, "auto-converge", &cfg->cap_auto_converge, err)) < 0)
		return gw_err_prefix(err, "caps");
	if (!json_object_object_get_ex(o, "agent", &agent) ||
	    !json_object_is_type(agent, json_type_object))
		return gw_err_set(err, EPROTO, "field \"agent\" missing or not an object");
	cfg->agent = json_object_get(agent);
	return 0;
}

int mig_config_from_json(struct json_object *o, struct mig_config *cfg, struct gw_err *err)
{
	memset(cfg, 0, sizeof(*cfg));
	int r = config_parse(o, cfg, err);
	if (r < 0) {
		mig_config_free(cfg);
		return gw_err_prefix(err, "CONFIG");
	}
	return 0;
}

void mig_config_free(struct mig_config *cfg)
{
	json_object_put(cfg->agent);
	cfg->agent = NULL;
}

static int send_reason(struct mig_conn *c, uint16_t type, int ok, const char *reason,
		       const char *message, struct gw_err *err)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (type == MIG_PREPARE)
		json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (reason) {
		json_object_object_add(o, "reason", json_object_new_string(reason));
		json_object_object_add(o, "message", json_object_new_string(message ? message : ""));
	}
	int r = mig_send_json(c, type, o, err);
	json_object_put(o);
	return r;
}

int mig_send_prepare(struct mig_conn *c, const char *reason, const char *message,
		     struct gw_err *err)
{
	return send_reason(c, MIG_PREPARE, reason == NULL, reason, message, err);
}

int mig_send_abort(struct mig_conn *c, const char *reason, const char *message,
		   struct gw_err *err)
{
	return send_reason(c, MIG_ABORT, 0, reason ? reason : "internal", message, err);
}

int mig_recv_prepare(struct mig_conn *c, struct gw_err *err)
{
	struct json_object *o;
	int ok, r = mig_recv_json(c, MIG_PREPARE, &o, err);
	if (r < 0)
		return r;
	if ((r = mig_json_bool(o, "ok", &ok, err)) < 0) {
		json_object_put(o);
		return gw_err_prefix(err, "PREPARE");
	}
	char reason[64] = "unspecified", msg[512] = "";
	if (!ok) {
		mig_json_str(o, "reason", reason, sizeof(reason), NULL);
		mig_json_str(o, "message", msg, sizeof(msg), NULL);
	}
	json_object_put(o);
	if (!ok)
		return gw_err_set(err, EACCES, "destination refused: %s: %s", reason, msg);
	return 0;
}
