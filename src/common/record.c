/* The container record on disk (include/godwit/container.h): config.json written once by its
 * creator, state.json replaced atomically by the shim on every change. */
#include <dirent.h>
#include <signal.h>
#include <string.h>

#include "godwit/container.h"
#include "godwit/mount.h"
#include "godwit/util.h"

#define RECORD_MAX (1 << 20)

char *ct_dir(const char *root, const char *name)
{
	return gw_strdup_printf("%s/containers/%s", root, name);
}

char *ct_path(const char *root, const char *name, const char *file)
{
	return gw_strdup_printf("%s/containers/%s/%s", root, name, file);
}

size_t ct_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void ct_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

char **ct_strv_dup(char *const *v)
{
	size_t n = ct_strv_len(v);
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			ct_strv_free(out);
			return NULL;
		}
	}
	return out;
}

char **ct_strv_from_json(json_object *arr)
{
	if (!arr || !json_object_is_type(arr, json_type_array))
		return NULL;
	size_t n = json_object_array_length(arr);
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_string) ||
		    !(v[i] = strdup(json_object_get_string(e)))) {
			ct_strv_free(v);
			return NULL;
		}
	}
	return v;
}

json_object *ct_strv_to_json(char *const *v)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(arr, json_object_new_string(v[i]));
	return arr;
}

static void add_str(json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

int ct_config_to_json(const struct ct_config *c, json_object **out)
{
	json_object *o = json_object_new_object();
	add_str(o, "name", c->name);
	add_str(o, "image", c->image);
	add_str(o, "image_id", c->image_id);
	json_object_object_add(o, "argv", ct_strv_to_json(c->argv));
	json_object_object_add(o, "env", ct_strv_to_json(c->env));
	add_str(o, "cwd", c->cwd);
	add_str(o, "user", c->user);
	add_str(o, "hostname", c->hostname);
	json_object_object_add(o, "mem_bytes", json_object_new_int64((int64_t)c->mem_bytes));
	json_object_object_add(o, "cpus", json_object_new_int(c->cpus));
	json_object_object_add(o, "auto_remove", json_object_new_boolean(c->auto_remove));
	json_object_object_add(o, "tty", json_object_new_boolean(c->tty));
	json_object_object_add(o, "open_stdin", json_object_new_boolean(c->open_stdin));
	add_str(o, "accel", c->accel);
	if (c->machine[0])
		add_str(o, "machine", c->machine);
	add_str(o, "kernel", c->kernel);
	add_str(o, "initrd", c->initrd);
	if (c->free_page_hints)
		json_object_object_add(o, "free_page_hints", json_object_new_boolean(1));
	add_str(o, "nic_mac", c->nic_mac);
	if (c->network[0]) {
		add_str(o, "network", c->network);
		add_str(o, "ip", c->ip);
	}
	if (c->ports && c->ports[0])
		json_object_object_add(o, "ports", ct_strv_to_json(c->ports));
	if (c->volumes && c->volumes[0])
		json_object_object_add(o, "volumes", ct_strv_to_json(c->volumes));
	if (c->rlimits && c->rlimits[0])
		json_object_object_add(o, "rlimits", ct_strv_to_json(c->rlimits));
	add_str(o, "netns", c->netns);
	json_object_object_add(o, "created_ns", json_object_new_int64(c->created_ns));
	if (c->log_max_size)
		json_object_object_add(o, "log_max_size", json_object_new_int64((int64_t)c->log_max_size));
	if (c->log_max_file)
		json_object_object_add(o, "log_max_file", json_object_new_int(c->log_max_file));
	if (c->restart) {
		add_str(o, "restart", c->restart == CT_RESTART_ALWAYS ? "always" : "on-failure");
		json_object_object_add(o, "restart_max", json_object_new_int(c->restart_max));
	}
	*out = o;
	return 0;
}

static int get_str(json_object *o, const char *k, int required, const char **out,
		   struct gw_err *err)
{
	json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return required ? gw_err_set(err, EINVAL, "config: missing \"%s\"", k) : 0;
	if (!json_object_is_type(v, json_type_string))
		return gw_err_set(err, EINVAL, "config: \"%s\" must be a string", k);
	*out = json_object_get_string(v);
	return 0;
}

static int copy_fixed(char *dst, size_t cap, const char *src, const char *what, struct gw_err *err)
{
	if (!src) {
		dst[0] = '\0';
		return 0;
	}
	if (strlen(src) >= cap)
		return gw_err_set(err, EINVAL, "config: \"%s\" too long", what);
	strcpy(dst, src);
	return 0;
}

int ct_config_from_json(json_object *j, struct ct_config *c, struct gw_err *err)
{
	memset(c, 0, sizeof(*c));
	if (!json_object_is_type(j, json_type_object))
		return gw_err_set(err, EINVAL, "config: not a JSON object");
	const char *s;
	int r;
	if ((r = get_str(j, "name", 1, &s, err)) < 0 || (r = copy_fixed(c->name, sizeof(c->name), s, "name", err)) < 0)
		return r;
	if (!gw_valid_name(c->name))
		return gw_err_set(err, EINVAL, "config: invalid container name");
	if ((r = get_str(j, "image", 0, &s, err)) < 0 || (r = copy_fixed(c->image, sizeof(c->image), s, "image", err)) < 0)
		return r;
	if ((r = get_str(j, "image_id", 1, &s, err)) < 0 || (r = copy_fixed(c->image_id, sizeof(c->image_id), s, "image_id", err)) < 0)
		return r;
	if ((r = get_str(j, "accel", 0, &s, err)) < 0 || (r = copy_fixed(c->accel, sizeof(c->accel), s, "accel", err)) < 0)
		return r;
	if ((r = get_str(j, "machine", 0, &s, err)) < 0 || (r = copy_fixed(c->machine, sizeof(c->machine), s, "machine", err)) < 0)
		return r;
	if ((r = get_str(j, "nic_mac", 0, &s, err)) < 0 || (r = copy_fixed(c->nic_mac, sizeof(c->nic_mac), s, "nic_mac", err)) < 0)
		return r;
	if ((r = get_str(j, "network", 0, &s, err)) < 0 || (r = copy_fixed(c->network, sizeof(c->network), s, "network", err)) < 0)
		return r;
	if ((r = get_str(j, "ip", 0, &s, err)) < 0 || (r = copy_fixed(c->ip, sizeof(c->ip), s, "ip", err)) < 0)
		return r;
	/* a peer's CONFIG or a snapshot may not bring a NIC of its own: godwit gives one only on
	 * a network of the host's (a tap on its bridge) */
	if (c->nic_mac[0] && !c->network[0])
		return gw_err_set(err, EINVAL, "config: a NIC (\"nic_mac\") without a network");
	/* a host's network namespace is this host's business: never joined on another's word */
	if (json_object_object_get_ex(j, "netns", NULL))
		return gw_err_set(err, EPERM, "config: a container in a network namespace of its "
				  "host's (godwit-runtime) cannot come from elsewhere");
	json_object *v;
	if (!json_object_object_get_ex(j, "argv", &v) || !(c->argv = ct_strv_from_json(v)) ||
	    !c->argv[0]) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"argv\" must be a non-empty string array");
	}
	if (json_object_object_get_ex(j, "env", &v) && !(c->env = ct_strv_from_json(v))) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"env\" must be a string array");
	}
	const char *keys[] = { "cwd", "user", "hostname", "kernel", "initrd" };
	char **dst[] = { &c->cwd, &c->user, &c->hostname, &c->kernel, &c->initrd };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if ((r = get_str(j, keys[i], 0, &s, err)) < 0) {
			ct_config_free(c);
			return r;
		}
		if (s && !(*dst[i] = strdup(s))) {
			ct_config_free(c);
			return gw_err_set(err, ENOMEM, "out of memory");
		}
	}
	if (json_object_object_get_ex(j, "ports", &v) &&
	    (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 64 ||
	     !(c->ports = ct_strv_from_json(v)))) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"ports\" must be at most 64 strings");
	}
	if (json_object_object_get_ex(j, "rlimits", &v) &&
	    (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 16 ||
	     !(c->rlimits = ct_strv_from_json(v)))) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"rlimits\" must be at most 16 strings");
	}
	/* every volume spec checked here: a CONFIG brings the config from another host */
	struct gw_mount mounts[GW_MOUNTS_MAX];
	int nm;
	if (json_object_object_get_ex(j, "volumes", &v) &&
	    (!json_object_is_type(v, json_type_array) ||
	     json_object_array_length(v) > GW_MOUNTS_MAX || !(c->volumes = ct_strv_from_json(v)))) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"volumes\" must be at most %d strings",
				  GW_MOUNTS_MAX);
	}
	if ((r = gw_mounts_parse(c->volumes, mounts, &nm, err)) < 0) {
		ct_config_free(c);
		return gw_err_prefix(err, "config");
	}
	if (json_object_object_get_ex(j, "mem_bytes", &v))
		c->mem_bytes = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(j, "cpus", &v))
		c->cpus = json_object_get_int(v);
	if (json_object_object_get_ex(j, "auto_remove", &v))
		c->auto_remove = json_object_get_boolean(v);
	if (json_object_object_get_ex(j, "tty", &v))
		c->tty = json_object_get_boolean(v);
	if (json_object_object_get_ex(j, "open_stdin", &v))
		c->open_stdin = json_object_get_boolean(v);
	if (json_object_object_get_ex(j, "free_page_hints", &v))
		c->free_page_hints = json_object_get_boolean(v);
	if (json_object_object_get_ex(j, "created_ns", &v))
		c->created_ns = json_object_get_int64(v);
	if (json_object_object_get_ex(j, "log_max_size", &v))
		c->log_max_size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(j, "log_max_file", &v))
		c->log_max_file = json_object_get_int(v);
	if ((r = get_str(j, "restart", 0, &s, err)) < 0) {
		ct_config_free(c);
		return r;
	}
	if (s && strcmp(s, "always") && strcmp(s, "on-failure")) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"restart\" must be always or on-failure");
	}
	c->restart = !s ? CT_RESTART_NO : !strcmp(s, "always") ? CT_RESTART_ALWAYS
							       : CT_RESTART_ON_FAILURE;
	if (json_object_object_get_ex(j, "restart_max", &v))
		c->restart_max = json_object_get_int(v);
	if (c->restart_max < 0 || c->restart_max > CT_RESTART_MAX_RETRIES) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: \"restart_max\" out of range");
	}
	if ((c->log_max_size && (c->log_max_size < CT_LOG_MAX_SIZE_MIN ||
				 c->log_max_size > (1ULL << 40))) ||
	    c->log_max_file < 0 || c->log_max_file > CT_LOG_MAX_FILE_MAX) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: log rotation out of range");
	}
	if (c->mem_bytes < (64ULL << 20) || c->mem_bytes > (1ULL << 40) || c->cpus < 1 ||
	    c->cpus > 64) {
		ct_config_free(c);
		return gw_err_set(err, EINVAL, "config: memory or cpus out of range");
	}
	return 0;
}

void ct_config_free(struct ct_config *c)
{
	ct_strv_free(c->argv);
	ct_strv_free(c->env);
	ct_strv_free(c->ports);
	ct_strv_free(c->volumes);
	ct_strv_free(c->rlimits);
	free(c->cwd);
	free(c->user);
	free(c->hostname);
	free(c->kernel);
	free(c->initrd);
	free(c->netns);
	memset(c, 0, sizeof(*c));
}

int ct_config_save(const char *root, const struct ct_config *c, struct gw_err *err)
{
	json_object *j;
	ct_config_to_json(c, &j);
	const char *txt = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY);
	cleanup_free char *path = ct_path(root, c->name, "config.json");
	int r = path ? gw_write_file(path, txt, strlen(txt), 0600, err)
		     : gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(j);
	return r;
}

static int load_json(const char *path, json_object **out, struct gw_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	int r = gw_read_file(path, RECORD_MAX, &buf, &len, err);
	if (r < 0)
		return r;
	json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!j || je != json_tokener_success) {
		json_object_put(j);
		return gw_err_set(err, EINVAL, "%s: malformed JSON", path);
	}
	*out = j;
	return 0;
}

int ct_config_load(const char *root, const char *name, struct ct_config *c, struct gw_err *err)
{
	if (!gw_valid_name(name))
		return gw_err_set(err, EINVAL, "invalid container name '%s'", name);
	cleanup_free char *path = ct_path(root, name, "config.json");
	json_object *j;
	int r = load_json(path, &j, err);
	if (r == -ENOENT)
		return gw_err_set(err, ENOENT, "no such container: %s", name);
	if (r < 0)
		return r;
	/* this host's own record may name a network namespace (ct_config_from_json takes none) */
	json_object *ns = NULL;
	if (json_object_is_type(j, json_type_object) && json_object_object_get_ex(j, "netns", &ns))
		ns = json_object_get(ns);
	if (ns)
		json_object_object_del(j, "netns");
	r = ct_config_from_json(j, c, err);
	json_object_put(j);
	if (r == 0 && ns && (!json_object_is_type(ns, json_type_string) ||
			     json_object_get_string(ns)[0] != '/'))
		r = gw_err_set(err, EINVAL, "config: \"netns\" must be an absolute path");
	if (r == 0 && ns && !(c->netns = strdup(json_object_get_string(ns))))
		r = gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(ns);
	if (r < 0 && c->argv)
		ct_config_free(c);
	return r;
}

int ct_status_save(const char *root, const char *name, const struct ct_status *s,
		   struct gw_err *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(ct_state_name(s->state)));
	json_object_object_add(o, "shim_pid", json_object_new_int(s->shim_pid));
	json_object_object_add(o, "qemu_pid", json_object_new_int(s->qemu_pid));
	json_object_object_add(o, "started_ns", json_object_new_int64(s->started_ns));
	json_object_object_add(o, "finished_ns", json_object_new_int64(s->finished_ns));
	json_object_object_add(o, "exit_status", json_object_new_int(s->exit_status));
	json_object_object_add(o, "restarts", json_object_new_int(s->restarts));
	json_object_object_add(o, "detail", json_object_new_string(s->detail));
	const char *txt = json_object_to_json_string(o);
	cleanup_free char *path = ct_path(root, name, "state.json");
	int r = path ? gw_write_file(path, txt, strlen(txt), 0600, err)
		     : gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(o);
	return r;
}

int ct_shim_alive(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, "__shim") != NULL;
}

static int is_live(enum ct_state s)
{
	return s == CT_RUNNING || s == CT_PAUSED || s == CT_MIGRATING || s == CT_INCOMING ||
	       s == CT_CREATED;
}

int ct_status_load(const char *root, const char *name, struct ct_status *s, struct gw_err *err)
{
	memset(s, 0, sizeof(*s));
	s->exit_status = -1;
	if (!gw_valid_name(name))
		return gw_err_set(err, EINVAL, "invalid container name '%s'", name);
	cleanup_free char *dir = ct_dir(root, name);
	if (!dir || access(dir, F_OK) < 0)
		return gw_err_set(err, ENOENT, "no such container: %s", name);
	cleanup_free char *path = ct_path(root, name, "state.json");
	json_object *j, *v;
	int r = load_json(path, &j, err);
	if (r == -ENOENT) {
		s->state = CT_CREATED;
		return 0;
	}
	if (r < 0)
		return r;
	if (json_object_object_get_ex(j, "state", &v) && json_object_is_type(v, json_type_string))
		ct_state_parse(json_object_get_string(v), &s->state);
	if (json_object_object_get_ex(j, "shim_pid", &v))
		s->shim_pid = json_object_get_int(v);
	if (json_object_object_get_ex(j, "qemu_pid", &v))
		s->qemu_pid = json_object_get_int(v);
	if (json_object_object_get_ex(j, "started_ns", &v))
		s->started_ns = json_object_get_int64(v);
	if (json_object_object_get_ex(j, "finished_ns", &v))
		s->finished_ns = json_object_get_int64(v);
	if (json_object_object_get_ex(j, "exit_status", &v))
		s->exit_status = json_object_get_int(v);
	if (json_object_object_get_ex(j, "restarts", &v))
		s->restarts = json_object_get_int(v);
	if (json_object_object_get_ex(j, "detail", &v) && json_object_is_type(v, json_type_string))
		snprintf(s->detail, sizeof(s->detail), "%s", json_object_get_string(v));
	json_object_put(j);
	if (is_live(s->state) && s->shim_pid > 0 && !ct_shim_alive(s->shim_pid)) {
		s->state = CT_STOPPED;
		snprintf(s->detail, sizeof(s->detail), "shim exited unexpectedly");
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ct_list(const char *root, char ***names, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/containers", root);
	DIR *d = opendir(dir);
	size_t n = 0, cap = 16;
	char **v = calloc(cap + 1, sizeof(*v));
	if (!v)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (!d) {
		*names = v;
		return errno == ENOENT ? 0 : gw_err_sys(err, errno, "open %s", dir);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !gw_valid_name(de->d_name))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (cap * 2 + 1) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		v[n++] = strdup(de->d_name);
		v[n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	return 0;
}

void ct_names_free(char **names)
{
	ct_strv_free(names);
}
