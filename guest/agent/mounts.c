/* The container's volumes (START's "mounts", docs/agent-protocol.md): each a virtio-blk disk
 * found by its serial (/sys/block/vdX/serial), an ext4 file system mounted at its target in
 * the container's root before the main process starts; unmounted first at power-off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "agent.h"
#include "godwit/mount.h"

static char mounted[GW_MOUNTS_MAX][GW_MOUNT_TARGET_MAX + 16];
static int n_mounted;

/* /dev/vdX of the disk whose serial is `serial`, into dev (len bytes) */
static int find_disk(const char *serial, char *dev, size_t len)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int found = -ENOENT;

	if (!d)
		return -errno;
	while (found < 0 && (e = readdir(d))) {
		char path[300], buf[64];
		ssize_t n;
		int fd;

		if (strncmp(e->d_name, "vd", 2) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (strcmp(buf, serial) == 0 && strlen(e->d_name) + 6 <= len) {
			snprintf(dev, len, "/dev/%.*s", (int)(len - 6), e->d_name);
			found = 0;
		}
	}
	closedir(d);
	return found;
}

/* mkdir -p of root + target (target checked: no "..", so it stays under root) */
static int make_target(const char *path)
{
	char buf[GW_MOUNT_TARGET_MAX + 16];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int mount_one_volume(const struct agent *a, struct json_object *m, struct gw_err *err)
{
	struct json_object *v;
	const char *serial = NULL, *target = NULL;
	char dev[64], path[GW_MOUNT_TARGET_MAX + 16];
	bool ro = false;
	int r;

	if (json_object_object_get_ex(m, "serial", &v) && json_object_is_type(v, json_type_string))
		serial = json_object_get_string(v);
	if (json_object_object_get_ex(m, "target", &v) && json_object_is_type(v, json_type_string))
		target = json_object_get_string(v);
	if (json_object_object_get_ex(m, "ro", &v))
		ro = json_object_get_boolean(v);
	if (!serial || strlen(serial) > 20 || !target || !gw_mount_target_ok(target))
		return gw_err_set(err, EINVAL, "mounts: want {\"serial\",\"target\"} with an "
				  "absolute target");
	for (int i = 0; i < 100 && (r = find_disk(serial, dev, sizeof(dev))) == -ENOENT; i++)
		usleep(10000);
	if (r < 0)
		return gw_err_set(err, -r, "volume disk %s not found", serial);
	snprintf(path, sizeof(path), "%s%s", strcmp(a->root, "/") ? a->root : "", target);
	if ((r = make_target(path)) < 0)
		return gw_err_set(err, -r, "mkdir %s: %s", target, strerror(-r));
	if (mount(dev, path, "ext4", MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0), NULL) < 0)
		return gw_err_sys(err, errno, "mount volume %s on %s", serial, target);
	snprintf(mounted[n_mounted++], sizeof(mounted[0]), "%s", path);
	agent_dbg(a, "volume %s (%s) on %s", serial, dev, target);
	return 0;
}

int mounts_setup(const struct agent *a, struct json_object *mounts, struct gw_err *err)
{
	size_t n = mounts ? json_object_array_length(mounts) : 0;

	if (n > GW_MOUNTS_MAX)
		return gw_err_set(err, E2BIG, "mounts: more than %d volumes", GW_MOUNTS_MAX);
	for (size_t i = 0; i < n && n_mounted < GW_MOUNTS_MAX; i++) {
		struct json_object *m = json_object_array_get_idx(mounts, i);
		int r;

		if (!json_object_is_type(m, json_type_object))
			return gw_err_set(err, EINVAL, "mounts[%zu] is not an object", i);
		if ((r = mount_one_volume(a, m, err)) < 0)
			return r;
	}
	return 0;
}

void mounts_teardown(void)
{
	while (n_mounted > 0) {
		const char *p = mounted[--n_mounted];

		if (umount2(p, 0) < 0 && umount2(p, MNT_DETACH) < 0)
			agent_log("umount %s: %s", p, strerror(errno));
	}
}
