/* The image store: ROOT/images/<hex>/ (base.ext4, config.json, meta.json) per image id and
 * ROOT/images/repositories.json mapping "name:tag" to ids. Changes take ROOT/images/lock and
 * are atomic: a finished image directory is renamed into place, the tag map is rewritten with
 * gw_write_file(), an image is renamed away before it is deleted. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "godwit/image.h"
#include "godwit/util.h"

#define CONTAINER_CONFIG_MAX (1u << 20)

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return 0;
	return 1;
}

static int lock_store(const char *root, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/images", root);
	return dir ? gw_lock_dir(dir, err) : gw_err_set(err, ENOMEM, "out of memory");
}

/* repositories.json as a JSON object {"repositories": {"name:tag": "sha256:..."}}. */
static int repos_read(const char *root, json_object **out, struct gw_err *err)
{
	cleanup_free char *path = gw_strdup_printf("%s/images/repositories.json", root);
	cleanup_free char *buf = NULL;
	json_object *o = NULL, *m;
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = gw_read_file(path, OCI_JSON_MAX, &buf, NULL, err);
	if (r == -ENOENT) {
		*out = json_object_new_object();
		return *out ? 0 : gw_err_set(err, ENOMEM, "out of memory");
	}
	if (r < 0)
		return r;
	o = json_tokener_parse(buf);
	if (!o || !json_object_object_get_ex(o, "repositories", &m) ||
	    !json_object_is_type(m, json_type_object)) {
		json_object_put(o);
		return gw_err_set(err, EINVAL, "%s: corrupt", path);
	}
	*out = json_object_get(m);
	json_object_put(o);
	return 0;
}

static int repos_write(const char *root, json_object *repos, struct gw_err *err)
{
	cleanup_free char *path = gw_strdup_printf("%s/images/repositories.json", root);
	json_object *o = json_object_new_object();
	if (!path || !o) {
		json_object_put(o);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	json_object_object_add(o, "repositories", json_object_get(repos));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	int r = gw_write_file(path, s, strlen(s), 0644, err);
	json_object_put(o);
	return r;
}

static char *image_dir(const char *root, const char *id)
{
	return gw_strdup_printf("%s/images/%.64s", root, id + 7);
}

int store_has_image(const char *root, const char *id)
{
	cleanup_free char *meta = gw_strdup_printf("%s/images/%.64s/meta.json", root, id + 7);
	return meta && access(meta, F_OK) == 0;
}

int store_commit(const char *root, const char *id, const char *tmpdir, char *const *tags,
		 int *existed, struct gw_err *err)
{
	cleanup_close int lock = lock_store(root, err);
	cleanup_free char *dir = image_dir(root, id);
	json_object *repos = NULL;
	if (lock < 0)
		return lock;
	if (!dir)
		return gw_err_set(err, ENOMEM, "out of memory");
	*existed = store_has_image(root, id);
	if (tmpdir && !*existed && rename(tmpdir, dir) < 0)
		return gw_err_sys(err, errno, "store image %s", dir);
	int r = repos_read(root, &repos, err);
	if (r < 0)
		return r;
	for (size_t i = 0; tags && tags[i]; i++)
		json_object_object_add(repos, tags[i], json_object_new_string(id));
	r = repos_write(root, repos, err);
	json_object_put(repos);
	return r;
}

/* Find the id of ref: a tag first (as docker does), then an id or unique id prefix. */
static int find_id(const char *root, const char *ref, char id[72], char **tag, struct gw_err *err)
{
	cleanup_free char *norm = NULL;
	json_object *repos = NULL, *v;
	struct gw_err ignored;
	if (tag)
		*tag = NULL;
	int r = repos_read(root, &repos, err);
	if (r < 0)
		return r;
	if (oci_normalize_ref(ref, &norm, &ignored) == 0 &&
	    json_object_object_get_ex(repos, norm, &v) && oci_valid_digest(json_object_get_string(v))) {
		snprintf(id, 72, "%s", json_object_get_string(v));
		json_object_put(repos);
		if (tag)
			*tag = steal_ptr(norm);
		return 0;
	}
	json_object_put(repos);
	const char *hex = !strncmp(ref, "sha256:", 7) ? ref + 7 : ref;
	size_t n = strlen(hex);
	if (n < 4 || n > 64 || !is_hex(hex, n))
		return gw_err_set(err, ENOENT, "unknown image: %s", ref);
	cleanup_free char *dir = gw_strdup_printf("%s/images", root);
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d)
		return gw_err_set(err, ENOENT, "unknown image: %s", ref);
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 64 || !is_hex(de->d_name, 64) ||
		    strncmp(de->d_name, hex, n))
			continue;
		snprintf(id, 72, "sha256:%.64s", de->d_name);
		if (store_has_image(root, id))
			found++;
	}
	closedir(d);
	if (found > 1)
		return gw_err_set(err, EINVAL, "image id prefix %s is ambiguous", ref);
	if (!found)
		return gw_err_set(err, ENOENT, "unknown image: %s", ref);
	return 0;
}

static int read_meta(const char *root, const char *id, uint64_t *size, int64_t *loaded,
		     struct gw_err *err)
{
	cleanup_free char *path = gw_strdup_printf("%s/images/%.64s/meta.json", root, id + 7);
	cleanup_free char *buf = NULL;
	json_object *o, *v;
	int r = path ? gw_read_file(path, 65536, &buf, NULL, err) : -ENOMEM;
	if (r < 0)
		return r;
	if (!(o = json_tokener_parse(buf)))
		return gw_err_set(err, EINVAL, "%s: corrupt", path);
	*size = json_object_object_get_ex(o, "size", &v) ? (uint64_t)json_object_get_int64(v) : 0;
	if (loaded)
		*loaded = json_object_object_get_ex(o, "loaded_ns", &v) ? json_object_get_int64(v)
									 : 0;
	json_object_put(o);
	return 0;
}

char *gw_image_base_disk(const char *root, const char *id)
{
	if (strncmp(id, "sha256:", 7) || strlen(id) != 71)
		return NULL;
	return gw_strdup_printf("%s/images/%.64s/base.ext4", root, id + 7);
}

int gw_image_resolve(const char *root, const char *ref, struct gw_image *out, struct gw_err *err)
{
	struct oci_config cfg;
	cleanup_free char *buf = NULL, *cfgp = NULL;
	size_t len;
	memset(out, 0, sizeof(*out));
	int r = find_id(root, ref, out->id, NULL, err);
	if (r < 0)
		return r;
	out->dir = image_dir(root, out->id);
	out->base_disk = gw_image_base_disk(root, out->id);
	cfgp = gw_strdup_printf("%s/images/%.64s/config.json", root, out->id + 7);
	if (!out->dir || !out->base_disk || !cfgp) {
		gw_image_free(out);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	if ((r = read_meta(root, out->id, &out->size, NULL, err)) < 0 ||
	    (r = gw_read_file(cfgp, OCI_JSON_MAX, &buf, &len, err)) < 0 ||
	    (r = oci_parse_config(buf, len, &cfg, err)) < 0) {
		gw_image_free(out);
		return gw_err_prefix(err, "image %s", ref);
	}
	out->entrypoint = steal_ptr(cfg.entrypoint);
	out->cmd = steal_ptr(cfg.cmd);
	out->env = steal_ptr(cfg.env);
	out->workdir = steal_ptr(cfg.workdir);
	out->user = steal_ptr(cfg.user);
	oci_config_free(&cfg);
	return 0;
}

void gw_image_free(struct gw_image *img)
{
	free(img->dir);
	free(img->base_disk);
	oci_strv_free(img->entrypoint);
	oci_strv_free(img->cmd);
	oci_strv_free(img->env);
	free(img->workdir);
	free(img->user);
	memset(img, 0, sizeof(*img));
}

void gw_image_info_free(struct gw_image_info *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++) {
		free(l[i].repo);
		free(l[i].tag);
	}
	free(l);
}

static int info_cmp(const void *a, const void *b)
{
	const struct gw_image_info *x = a, *y = b;
	if (x->loaded_ns != y->loaded_ns)
		return x->loaded_ns > y->loaded_ns ? -1 : 1;
	int c = strcmp(x->id, y->id);
	if (c || !x->repo || !y->repo)
		return c;
	return (c = strcmp(x->repo, y->repo)) ? c : strcmp(x->tag, y->tag);
}

static int push_info(struct gw_image_info **l, size_t *n, const char *id, const char *ref,
		     uint64_t size, int64_t loaded)
{
	struct gw_image_info *nl = realloc(*l, (*n + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	*l = nl;
	struct gw_image_info *i = &nl[(*n)++];
	memset(i, 0, sizeof(*i));
	snprintf(i->id, sizeof(i->id), "%s", id);
	i->size = size;
	i->loaded_ns = loaded;
	if (ref) {
		const char *colon = strrchr(ref, ':');
		i->repo = strndup(ref, (size_t)(colon - ref));
		i->tag = strdup(colon + 1);
		if (!i->repo || !i->tag)
			return -ENOMEM;
	}
	return 0;
}

int gw_image_list(const char *root, struct gw_image_info **out, size_t *n, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/images", root);
	json_object *repos = NULL;
	*out = NULL;
	*n = 0;
	int r = repos_read(root, &repos, err);
	if (r < 0)
		return r;
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d) {
		json_object_put(repos);
		return errno == ENOENT ? 0 : gw_err_sys(err, errno, "open %s", dir);
	}
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		char id[72];
		uint64_t size;
		int64_t loaded;
		int tagged = 0;
		struct gw_err ignored;
		if (strlen(de->d_name) != 64 || !is_hex(de->d_name, 64))
			continue;
		snprintf(id, sizeof(id), "sha256:%.64s", de->d_name);
		if (read_meta(root, id, &size, &loaded, &ignored) < 0)
			continue; /* not a complete image */
		json_object_object_foreach(repos, key, val) {
			if (r == 0 && gw_json_streq(val, id) && strchr(key, ':')) {
				r = push_info(out, n, id, key, size, loaded);
				tagged = 1;
			}
		}
		if (r == 0 && !tagged)
			r = push_info(out, n, id, NULL, size, loaded);
	}
	closedir(d);
	json_object_put(repos);
	if (r < 0) {
		gw_image_info_free(*out, *n);
		*out = NULL;
		*n = 0;
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), info_cmp);
	return 0;
}

/* Fail with -EBUSY naming the first container in ROOT/containers whose image_id is id. */
static int check_unused(const char *root, const char *id, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/containers", root);
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d)
		return 0;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *p = gw_strdup_printf("%s/%s/config.json", dir, de->d_name);
		cleanup_free char *buf = NULL;
		struct gw_err ignored;
		json_object *o, *v;
		if (!p || gw_read_file(p, CONTAINER_CONFIG_MAX, &buf, NULL, &ignored) < 0)
			continue;
		if ((o = json_tokener_parse(buf)) && json_object_object_get_ex(o, "image_id", &v) &&
		    gw_json_streq(v, id))
			r = gw_err_set(err, EBUSY, "image %.19s is used by container %s (remove the "
				       "container first)", id, de->d_name);
		json_object_put(o);
	}
	closedir(d);
	return r;
}

static void emit(void (*print)(const char *, void *), void *arg, const char *pre, const char *s)
{
	char line[512];
	snprintf(line, sizeof(line), "%s%s", pre, s);
	if (print)
		print(line, arg);
}

int gw_image_remove(const char *root, const char *ref, void (*print)(const char *, void *),
		    void *arg, struct gw_err *err)
{
	cleanup_close int lock = lock_store(root, err);
	cleanup_free char *tag = NULL;
	char id[72];
	json_object *repos = NULL;
	if (lock < 0)
		return lock;
	int r = find_id(root, ref, id, &tag, err);
	if (r < 0 || (r = repos_read(root, &repos, err)) < 0)
		return r;
	int others = 0;
	json_object_object_foreach(repos, key, val)
		others += gw_json_streq(val, id) && (!tag || strcmp(key, tag));
	if (tag && others) {
		json_object_object_del(repos, tag);
		if ((r = repos_write(root, repos, err)) == 0)
			emit(print, arg, "Untagged: ", tag);
		json_object_put(repos);
		return r;
	}
	if ((r = check_unused(root, id, err)) < 0) {
		json_object_put(repos);
		return r;
	}
	/* Collect first: deleting while iterating a json-c object is not safe. */
	char *del[OCI_TAGS_MAX * 4];
	size_t nd = 0;
	json_object_object_foreach(repos, k2, v2)
		if (gw_json_streq(v2, id) && nd < ARRAY_SIZE(del))
			del[nd++] = k2;
	for (size_t i = 0; i < nd; i++)
		emit(print, arg, "Untagged: ", del[i]);
	for (size_t i = 0; i < nd; i++)
		json_object_object_del(repos, del[i]);
	r = repos_write(root, repos, err);
	json_object_put(repos);
	if (r < 0)
		return r;
	cleanup_free char *dir = image_dir(root, id);
	cleanup_free char *gone = gw_strdup_printf("%s/images/tmp/rm-%.64s", root, id + 7);
	cleanup_free char *tmp = gw_strdup_printf("%s/images/tmp", root);
	if (!dir || !gone || !tmp)
		return gw_err_set(err, ENOMEM, "out of memory");
	if ((r = gw_mkdir_p(tmp, 0700, err)) < 0 || (r = gw_rm_rf(gone, err)) < 0)
		return r;
	if (rename(dir, gone) < 0)
		return gw_err_sys(err, errno, "remove %s", dir);
	emit(print, arg, "Deleted: ", id);
	return gw_rm_rf(gone, err);
}
