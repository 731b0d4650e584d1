/* config.json of an OCI bundle into what godwit-runtime needs (include/godwit/runtime_spec.h,
 * docs/oci-runtime.md "What config.json maps to"). Fields a VM container cannot honour are
 * refused by name; those the guest provides on its own (proc, sysfs, tmpfs, ... mounts) or
 * that confine a host process (seccomp, capabilities, cgroups) are left to the VM boundary. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/container.h"
#include "godwit/runtime_spec.h"
#include "godwit/util.h"

/* mount types the guest sets up itself: taken as given, nothing of the host is shared */
static const char *const GUEST_MOUNTS[] = { "proc", "sysfs", "tmpfs", "devpts", "mqueue",
					    "cgroup", "cgroup2" };

static json_object *get(json_object *o, const char *k, json_type t)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

/* present but of another type: a malformed config, not a missing field */
static int wrong_type(json_object *o, const char *k, json_type t)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) && !json_object_is_type(v, t);
}

static int strv(json_object *arr, const char *field, int need_eq, char ***out,
		struct gw_err *err)
{
	size_t n = json_object_array_length(arr);
	if (n > RTSPEC_ARGS_MAX)
		return gw_err_set(err, EINVAL, "%s: %zu entries, at most %d", field, n,
				  RTSPEC_ARGS_MAX);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return gw_err_set(err, ENOMEM, "out of memory");
	*out = v;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_string))
			return gw_err_set(err, EINVAL, "%s[%zu]: not a string", field, i);
		const char *s = json_object_get_string(e);
		if (need_eq && (!strchr(s, '=') || s[0] == '='))
			return gw_err_set(err, EINVAL, "%s[%zu]: not KEY=VALUE", field, i);
		if (!(v[i] = strdup(s)))
			return gw_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int uint32_field(json_object *o, const char *k, const char *field, uint32_t *out,
			struct gw_err *err)
{
	json_object *v = get(o, k, json_type_int);
	if (wrong_type(o, k, json_type_int))
		return gw_err_set(err, EINVAL, "%s: not an integer", field);
	int64_t x = v ? json_object_get_int64(v) : 0;
	if (x < 0 || x > 0xfffffffeLL)
		return gw_err_set(err, EINVAL, "%s: %lld is not an id", field, (long long)x);
	*out = (uint32_t)x;
	return 0;
}

/* each {"type": "RLIMIT_X", "soft": N, "hard": N} as "RLIMIT_X=SOFT:HARD" (the agent sets them
 * in the guest, where raising them is the container's own kernel's business) */
static int parse_rlimits(json_object *rl, struct rt_spec *s, struct gw_err *err)
{
	size_t n = rl ? json_object_array_length(rl) : 0;
	if (n > RTSPEC_RLIMITS_MAX)
		return gw_err_set(err, E2BIG, "process.rlimits: more than %d", RTSPEC_RLIMITS_MAX);
	if (!(s->rlimits = calloc(n + 1, sizeof(char *))))
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(rl, i);
		json_object *t = get(e, "type", json_type_string), *so = get(e, "soft", json_type_int);
		json_object *ha = get(e, "hard", json_type_int);
		const char *ty = t ? json_object_get_string(t) : "";
		uint64_t soft = so ? json_object_get_uint64(so) : 0, hard = ha ? json_object_get_uint64(ha) : 0;
		if (!t || !so || !ha || strncmp(ty, "RLIMIT_", 7) || strlen(ty) > 24 ||
		    strspn(ty + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(ty + 7) || soft > hard)
			return gw_err_set(err, EINVAL, "process.rlimits[%zu]: want an RLIMIT_ type, "
					  "and soft <= hard", i);
		s->rlimits[i] = gw_strdup_printf("%s=%llu:%llu", ty, (unsigned long long)soft,
						 (unsigned long long)hard);
		if (!s->rlimits[i])
			return gw_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_process(json_object *p, struct rt_spec *s, struct gw_err *err)
{
	json_object *args = get(p, "args", json_type_array), *env = get(p, "env", json_type_array);
	if (!args || json_object_array_length(args) == 0)
		return gw_err_set(err, EINVAL, "process.args: missing or empty");
	int r = strv(args, "process.args", 0, &s->args, err);
	if (r == 0 && wrong_type(p, "env", json_type_array))
		r = gw_err_set(err, EINVAL, "process.env: not an array");
	if (r == 0 && env)
		r = strv(env, "process.env", 1, &s->env, err);
	else if (r == 0 && !(s->env = calloc(1, sizeof(char *))))
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r < 0)
		return r;
	json_object *cwd = get(p, "cwd", json_type_string);
	if (wrong_type(p, "cwd", json_type_string) || (cwd && json_object_get_string(cwd)[0] != '/'))
		return gw_err_set(err, EINVAL, "process.cwd: not an absolute path");
	if (!(s->cwd = strdup(cwd ? json_object_get_string(cwd) : "/")))
		return gw_err_set(err, ENOMEM, "out of memory");
	json_object *user = get(p, "user", json_type_object);
	if (wrong_type(p, "user", json_type_object))
		return gw_err_set(err, EINVAL, "process.user: not an object");
	if ((r = uint32_field(user, "uid", "process.user.uid", &s->uid, err)) < 0 ||
	    (r = uint32_field(user, "gid", "process.user.gid", &s->gid, err)) < 0)
		return r;
	if (get(user, "username", json_type_string))
		return gw_err_set(err, EINVAL, "process.user.username: a Windows field");
	json_object *rl = get(p, "rlimits", json_type_array);
	if (wrong_type(p, "rlimits", json_type_array))
		return gw_err_set(err, EINVAL, "process.rlimits: not an array");
	if ((r = parse_rlimits(rl, s, err)) < 0)
		return r;
	json_object *t = get(p, "terminal", json_type_boolean);
	if (wrong_type(p, "terminal", json_type_boolean))
		return gw_err_set(err, EINVAL, "process.terminal: not a boolean");
	s->terminal = t && json_object_get_boolean(t);
	return 0;
}

static int is_bind(json_object *m, const char *type)
{
	if (!strcmp(type, "bind"))
		return 1;
	json_object *opts = get(m, "options", json_type_array);
	for (size_t i = 0; opts && i < json_object_array_length(opts); i++) {
		const char *o = json_object_get_string(json_object_array_get_idx(opts, i));
		if (o && (!strcmp(o, "bind") || !strcmp(o, "rbind")))
			return 1;
	}
	return 0;
}

static int parse_mounts(json_object *mounts, struct rt_spec *s, struct gw_err *err)
{
	size_t n = json_object_array_length(mounts);
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(mounts, i);
		json_object *type = get(m, "type", json_type_string);
		json_object *dst = get(m, "destination", json_type_string);
		if (!json_object_is_type(m, json_type_object) || !dst)
			return gw_err_set(err, EINVAL, "mounts[%zu]: no destination", i);
		const char *ty = type ? json_object_get_string(type) : "";
		const char *d = json_object_get_string(dst);
		if (is_bind(m, ty)) {
			json_object *src = get(m, "source", json_type_string);
			if (!strcmp(d, "/dev/shm"))
				continue; /* the guest's own tmpfs: shared memory never leaves it */
			if (!src || json_object_get_string(src)[0] != '/' || d[0] != '/')
				return gw_err_set(err, EINVAL, "mounts[%zu]: a bind mount needs an "
						  "absolute source and destination", i);
			if (s->nbinds == RTSPEC_BINDS_MAX)
				return gw_err_set(err, E2BIG, "mounts: more than %d bind mounts",
						  RTSPEC_BINDS_MAX);
			struct rt_bind *b = &s->binds[s->nbinds++];
			if (!(b->src = strdup(json_object_get_string(src))) || !(b->dst = strdup(d)))
				return gw_err_set(err, ENOMEM, "out of memory");
			continue;
		}
		size_t k = 0;
		while (k < ARRAY_SIZE(GUEST_MOUNTS) && strcmp(ty, GUEST_MOUNTS[k]))
			k++;
		if (k == ARRAY_SIZE(GUEST_MOUNTS))
			return gw_err_set(err, ENOTSUP, "mounts[%zu] (%.200s, type \"%.32s\"): not "
					  "a file system the guest makes itself, and the container's "
					  "VM cannot share the host's", i, d, ty);
	}
	return 0;
}

/* linux.resources (or `update --resources`): memory.limit sizes the VM, cpu quota/period
 * its vCPUs; the rest confines host processes and has nothing to confine here */
static int parse_resources(json_object *res, struct rt_spec *s, struct gw_err *err)
{
	json_object *mem = get(get(res, "memory", json_type_object), "limit", json_type_int);
	if (mem) {
		int64_t lim = json_object_get_int64(mem);
		if (lim > 0 && (uint64_t)lim < RTSPEC_MEM_MIN)
			return gw_err_set(err, EINVAL, "linux.resources.memory.limit: %lld bytes, "
					  "a VM needs at least %llu", (long long)lim,
					  (unsigned long long)RTSPEC_MEM_MIN);
		if (lim > 0)
			s->mem_bytes = (uint64_t)lim & ~((1ull << 20) - 1);
	}
	json_object *cpu = get(res, "cpu", json_type_object);
	json_object *quota = get(cpu, "quota", json_type_int), *period = get(cpu, "period",
									     json_type_int);
	if (quota && period && json_object_get_int64(quota) > 0 &&
	    json_object_get_int64(period) > 0) {
		int64_t q = json_object_get_int64(quota), p = json_object_get_int64(period);
		int64_t c = q / p + (q % p != 0);
		s->cpus = c > RTSPEC_CPUS_MAX ? RTSPEC_CPUS_MAX : (int)c;
	}
	return 0;
}

static int parse_linux(json_object *l, struct rt_spec *s, struct gw_err *err)
{
	json_object *ns = get(l, "namespaces", json_type_array);
	for (size_t i = 0; ns && i < json_object_array_length(ns); i++) {
		json_object *e = json_object_array_get_idx(ns, i);
		json_object *path = get(e, "path", json_type_string);
		json_object *type = get(e, "type", json_type_string);
		if (!path)
			continue;
		const char *p = json_object_get_string(path);
		/* the network's: the VM's NIC takes its interface over (shim_netns.c) */
		if (type && !strcmp(json_object_get_string(type), "network") && p[0] == '/' &&
		    strlen(p) < 4096 && !s->netns) {
			if (!(s->netns = strdup(p)))
				return gw_err_set(err, ENOMEM, "out of memory");
			continue;
		}
		return gw_err_set(err, ENOTSUP, "linux.namespaces[%zu]: joining an existing %.16s "
				  "namespace (%.64s) is not supported", i,
				  type ? json_object_get_string(type) : "", p);
	}
	if (get(l, "uidMappings", json_type_array) || get(l, "gidMappings", json_type_array))
		return gw_err_set(err, ENOTSUP, "linux.uidMappings: user namespaces are not "
				  "supported (the VM is the container's boundary)");
	return parse_resources(get(l, "resources", json_type_object), s, err);
}

/* one JSON object, the whole of json's len bytes, or NULL */
static json_object *parse_object(const char *json, size_t len)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	int bad = json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len;
	json_tokener_free(tok);
	if (bad || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int rt_process_parse(const char *json, size_t len, struct rt_spec *s, struct gw_err *err)
{
	memset(s, 0, sizeof(*s));
	if (len > RTSPEC_JSON_MAX)
		return gw_err_set(err, EFBIG, "process: more than %u bytes", RTSPEC_JSON_MAX);
	json_object *o = parse_object(json, len);
	int r = o ? parse_process(o, s, err) : gw_err_set(err, EINVAL, "process: not one JSON "
								    "object");
	json_object_put(o);
	return r;
}

int rt_resources_parse(const char *json, size_t len, uint64_t *mem_bytes, int *cpus,
		       struct gw_err *err)
{
	struct rt_spec s = { 0 };
	if (len > RTSPEC_JSON_MAX)
		return gw_err_set(err, EFBIG, "resources: more than %u bytes", RTSPEC_JSON_MAX);
	json_object *o = parse_object(json, len);
	int r = o ? parse_resources(o, &s, err) : gw_err_set(err, EINVAL, "resources: not one "
								       "JSON object");
	json_object_put(o);
	*mem_bytes = s.mem_bytes;
	*cpus = s.cpus;
	return r;
}

int rt_spec_parse(const char *json, size_t len, struct rt_spec *s, struct gw_err *err)
{
	memset(s, 0, sizeof(*s));
	s->mem_bytes = RTSPEC_MEM_DEFAULT;
	s->cpus = 1;
	if (len > RTSPEC_JSON_MAX)
		return gw_err_set(err, EFBIG, "config.json: more than %u bytes", RTSPEC_JSON_MAX);
	json_object *o = parse_object(json, len);
	int r = 0;
	if (!o)
		r = gw_err_set(err, EINVAL, "config.json: not one JSON object");
	json_object *v = get(o, "ociVersion", json_type_string), *root, *h, *a;
	if (r == 0 && (!v || strncmp(json_object_get_string(v), "1.", 2)))
		r = gw_err_set(err, EINVAL, "ociVersion: missing, or not 1.x");
	if (r == 0 && !(s->oci_version = strdup(json_object_get_string(v))))
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r == 0 && !get(o, "process", json_type_object))
		r = gw_err_set(err, EINVAL, "process: missing");
	if (r == 0)
		r = parse_process(get(o, "process", json_type_object), s, err);
	root = get(o, "root", json_type_object);
	v = get(root, "path", json_type_string);
	if (r == 0 && (!v || !json_object_get_string(v)[0]))
		r = gw_err_set(err, EINVAL, "root.path: missing");
	if (r == 0 && get(root, "readonly", json_type_boolean) &&
	    json_object_get_boolean(get(root, "readonly", json_type_boolean)))
		r = gw_err_set(err, ENOTSUP, "root.readonly: a read-only root is not supported yet");
	if (r == 0 && !(s->root_path = strdup(json_object_get_string(v))))
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r == 0 && (h = get(o, "hostname", json_type_string)) &&
	    json_object_get_string_len(h) > 0) {
		if (json_object_get_string_len(h) > 64)
			r = gw_err_set(err, EINVAL, "hostname: longer than 64 bytes");
		else if (!(s->hostname = strdup(json_object_get_string(h))))
			r = gw_err_set(err, ENOMEM, "out of memory");
	}
	if (r == 0 && wrong_type(o, "mounts", json_type_array))
		r = gw_err_set(err, EINVAL, "mounts: not an array");
	if (r == 0 && get(o, "mounts", json_type_array))
		r = parse_mounts(get(o, "mounts", json_type_array), s, err);
	json_object *hooks = get(o, "hooks", json_type_object);
	if (r == 0 && hooks && json_object_object_length(hooks) > 0)
		r = gw_err_set(err, ENOTSUP, "hooks: not supported (they would run on the host, "
			       "outside the container's VM)");
	if (r == 0 && get(o, "linux", json_type_object))
		r = parse_linux(get(o, "linux", json_type_object), s, err);
	a = get(o, "annotations", json_type_object);
	if (r == 0 && a && json_object_object_length(a) > RTSPEC_ANNOTATIONS_MAX)
		r = gw_err_set(err, EINVAL, "annotations: more than %d", RTSPEC_ANNOTATIONS_MAX);
	if (r == 0 && a) {
		json_object_object_foreach(a, k, av) {
			(void)k;
			if (!json_object_is_type(av, json_type_string))
				r = gw_err_set(err, EINVAL, "annotations: values must be strings");
		}
	}
	if (r == 0 && !(s->annotations = strdup(a ? json_object_to_json_string_ext(
							  a, JSON_C_TO_STRING_PLAIN) : "{}")))
		r = gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(o);
	return r;
}

void rt_spec_free(struct rt_spec *s)
{
	ct_strv_free(s->args);
	ct_strv_free(s->env);
	ct_strv_free(s->rlimits);
	free(s->oci_version);
	free(s->cwd);
	free(s->root_path);
	free(s->hostname);
	free(s->annotations);
	free(s->netns);
	for (int i = 0; i < s->nbinds; i++) {
		free(s->binds[i].src);
		free(s->binds[i].dst);
	}
	memset(s, 0, sizeof(*s));
}
