/* Named volumes (include/godwit/volume.h): ROOT/volumes/NAME/{disk.qcow2,volume.json}. A new
 * volume is made in ROOT/volumes/.new-NAME and renamed into place, under the directory's lock,
 * so a half-made one is never seen and two makers of one name cannot both win. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "godwit/container.h"
#include "godwit/mount.h"
#include "godwit/proc.h"
#include "godwit/util.h"
#include "godwit/volume.h"

#define MIB (1ULL << 20)

char *gw_volume_disk(const char *root, const char *name)
{
	return gw_strdup_printf("%s/volumes/%s/disk.qcow2", root, name);
}

/* ext4 in a sparse raw file, then qcow2 (mkfs cannot write qcow2 itself); or a blank qcow2 */
static int make_disk(const char *dir, uint64_t size, int blank, struct gw_err *err)
{
	cleanup_free char *raw = gw_strdup_printf("%s/fs.raw", dir);
	cleanup_free char *disk = gw_strdup_printf("%s/disk.qcow2", dir);
	char sz[32];
	if (!raw || !disk)
		return gw_err_set(err, ENOMEM, "out of memory");
	snprintf(sz, sizeof(sz), "%lluk", (unsigned long long)(size >> 10));
	if (blank) {
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", disk, sz, NULL };
		return gw_run(argv, err);
	}
	char *mkfs[] = { "mkfs.ext4", "-q", "-F", "-t", "ext4", "-m", "0", "-E",
			 "root_owner=0:0,lazy_itable_init=1", raw, sz, NULL };
	char *conv[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, disk, NULL };
	int r = gw_run(mkfs, err);
	if (r == 0)
		r = gw_run(conv, err);
	unlink(raw);
	return r;
}

static int write_meta(const char *dir, const char *name, uint64_t size, struct gw_err *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(o, "created_ns", json_object_new_int64(gw_now_real_ns()));
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	cleanup_free char *path = gw_strdup_printf("%s/volume.json", dir);
	int r = path ? gw_write_file(path, txt, strlen(txt), 0600, err)
		     : gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(o);
	return r;
}

int gw_volume_create(const char *root, const char *name, uint64_t size, int blank,
		     struct gw_err *err)
{
	if (!gw_valid_name(name))
		return gw_err_set(err, EINVAL, "invalid volume name \"%.64s\" (want "
				  "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63})", name);
	if (size < GW_VOLUME_SIZE_MIN || size > GW_VOLUME_SIZE_MAX || size % MIB)
		return gw_err_set(err, EINVAL, "volume size %llu: want whole MiB from 16M to 1T",
				  (unsigned long long)size);
	cleanup_free char *top = gw_strdup_printf("%s/volumes", root);
	cleanup_free char *dir = gw_strdup_printf("%s/volumes/%s", root, name);
	cleanup_free char *tmp = gw_strdup_printf("%s/volumes/.new-%s", root, name);
	if (!top || !dir || !tmp)
		return gw_err_set(err, ENOMEM, "out of memory");
	cleanup_close int lock = gw_lock_dir(top, err);
	if (lock < 0)
		return lock;
	struct stat st;
	if (lstat(dir, &st) == 0)
		return gw_err_set(err, EEXIST, "volume %s already exists", name);
	struct gw_err ignored = { 0 };
	gw_rm_rf(tmp, &ignored);
	if (mkdir(tmp, 0700) < 0)
		return gw_err_sys(err, errno, "mkdir %s", tmp);
	int r = make_disk(tmp, size, blank, err);
	if (r == 0)
		r = write_meta(tmp, name, size, err);
	if (r == 0 && rename(tmp, dir) < 0)
		r = gw_err_sys(err, errno, "rename %s", tmp);
	if (r < 0) {
		gw_rm_rf(tmp, &ignored);
		return gw_err_prefix(err, "volume %s", name);
	}
	return 0;
}

static int read_meta(const char *root, const char *name, struct gw_volume_info *vi,
		     struct gw_err *err)
{
	cleanup_free char *path = gw_strdup_printf("%s/volumes/%s/volume.json", root, name);
	cleanup_free char *buf = NULL;
	size_t len;
	memset(vi, 0, sizeof(*vi));
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = gw_read_file(path, 4096, &buf, &len, err);
	if (r == -ENOENT)
		return gw_err_set(err, ENOENT, "no volume %s", name);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(buf), *v;
	if (!o || !json_object_object_get_ex(o, "size", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		json_object_put(o);
		return gw_err_set(err, EINVAL, "volume %s: malformed volume.json", name);
	}
	snprintf(vi->name, sizeof(vi->name), "%s", name);
	vi->size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "created_ns", &v))
		vi->created_ns = json_object_get_int64(v);
	json_object_put(o);
	return 0;
}

int gw_volume_size(const char *root, const char *name, uint64_t *size, struct gw_err *err)
{
	struct gw_volume_info vi;
	if (!gw_valid_name(name))
		return gw_err_set(err, EINVAL, "invalid volume name \"%.64s\"", name);
	int r = read_meta(root, name, &vi, err);
	if (r == 0)
		*size = vi.size;
	return r;
}

int gw_volume_user(const char *root, const char *name, const char *except, char user[65],
		   struct gw_err *err)
{
	char **names = NULL;
	int r = ct_list(root, &names, err), found = 0;
	if (r < 0)
		return r;
	for (size_t i = 0; names[i] && !found; i++) {
		struct ct_config c;
		struct gw_mount m[GW_MOUNTS_MAX];
		int n = 0;
		struct gw_err ignored = { 0 };
		if ((except && strcmp(names[i], except) == 0) ||
		    ct_config_load(root, names[i], &c, &ignored) < 0)
			continue;
		if (gw_mounts_parse(c.volumes, m, &n, &ignored) == 0)
			for (int k = 0; k < n && !found; k++)
				if (strcmp(m[k].name, name) == 0) {
					snprintf(user, 65, "%s", names[i]);
					found = 1;
				}
		ct_config_free(&c);
	}
	ct_names_free(names);
	return found;
}

int gw_volume_remove(const char *root, const char *name, struct gw_err *err)
{
	uint64_t size;
	char user[65];
	int r = gw_volume_size(root, name, &size, err);
	if (r < 0)
		return r;
	cleanup_free char *top = gw_strdup_printf("%s/volumes", root);
	cleanup_free char *dir = gw_strdup_printf("%s/volumes/%s", root, name);
	if (!top || !dir)
		return gw_err_set(err, ENOMEM, "out of memory");
	cleanup_close int lock = gw_lock_dir(top, err);
	if (lock < 0)
		return lock;
	if ((r = gw_volume_user(root, name, NULL, user, err)) < 0)
		return r;
	if (r == 1)
		return gw_err_set(err, EBUSY, "volume %s is used by container %s (remove it first)",
				  name, user);
	return gw_rm_rf(dir, err);
}

int gw_volume_delete(const char *root, const char *name, struct gw_err *err)
{
	if (!gw_valid_name(name))
		return gw_err_set(err, EINVAL, "invalid volume name \"%.64s\"", name);
	cleanup_free char *dir = gw_strdup_printf("%s/volumes/%s", root, name);
	return dir ? gw_rm_rf(dir, err) : gw_err_set(err, ENOMEM, "out of memory");
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct gw_volume_info *)a)->name,
		      ((const struct gw_volume_info *)b)->name);
}

int gw_volume_list(const char *root, struct gw_volume_info **out, size_t *n, struct gw_err *err)
{
	*out = NULL;
	*n = 0;
	cleanup_free char *top = gw_strdup_printf("%s/volumes", root);
	if (!top)
		return gw_err_set(err, ENOMEM, "out of memory");
	DIR *d = opendir(top);
	if (!d)
		return errno == ENOENT ? 0 : gw_err_sys(err, errno, "open %s", top);
	struct dirent *e;
	size_t cap = 0;
	int r = 0;
	while ((e = readdir(d)) && r == 0) {
		struct gw_volume_info vi;
		struct gw_err ignored = { 0 };
		if (e->d_name[0] == '.' || !gw_valid_name(e->d_name) ||
		    read_meta(root, e->d_name, &vi, &ignored) < 0)
			continue;
		if (*n == cap) {
			void *p = realloc(*out, (cap = cap ? 2 * cap : 8) * sizeof(**out));
			if (!p) {
				r = gw_err_set(err, ENOMEM, "out of memory");
				break;
			}
			*out = p;
		}
		if ((r = gw_volume_user(root, vi.name, NULL, vi.user, err)) >= 0) {
			if (r == 0)
				vi.user[0] = '\0';
			(*out)[(*n)++] = vi;
			r = 0;
		}
	}
	closedir(d);
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return r;
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), by_name);
	return 0;
}
