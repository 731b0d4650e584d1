/* Named volumes (docs/volumes.md): disks of their own that outlive containers, one directory
 * each, ROOT/volumes/NAME/ with disk.qcow2 (an ext4 file system, or blank until a migration's
 * mirror fills it) and volume.json ({"name","size","created_ns"}). A container mounts them
 * with `run -v NAME:/path` (godwit/mount.h); they move with it. */
#ifndef GODWIT_VOLUME_H
#define GODWIT_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

#define GW_VOLUME_SIZE_DEFAULT (1ULL << 30)
#define GW_VOLUME_SIZE_MIN (16ULL << 20)
#define GW_VOLUME_SIZE_MAX (1ULL << 40)

/* ROOT/volumes/NAME/disk.qcow2 (malloc'd; NULL on OOM). */
char *gw_volume_disk(const char *root, const char *name);

/* Make volume NAME of size bytes (GW_VOLUME_SIZE_MIN..MAX, whole MiB), formatted ext4, or
 * blank (for a migration's destination, whose mirror copies the source's whole disk).
 * -EEXIST if it exists; nothing is left behind on failure. */
int gw_volume_create(const char *root, const char *name, uint64_t size, int blank,
		     struct gw_err *err);

/* Its size from volume.json: 0, -ENOENT if there is no such volume. */
int gw_volume_size(const char *root, const char *name, uint64_t *size, struct gw_err *err);

/* The first container (other than `except`, may be NULL) whose config mounts NAME, into
 * user (65 bytes): 1 if there is one, 0 if not, or a negative errno. */
int gw_volume_user(const char *root, const char *name, const char *except, char user[65],
		   struct gw_err *err);

/* Remove volume NAME: -EBUSY (naming the container) while a container's config mounts it
 * (remove the container first), -ENOENT if there is none. */
int gw_volume_remove(const char *root, const char *name, struct gw_err *err);

/* Remove volume NAME whatever mounts it: a volume that moved to another host with its
 * container, or one a failed incoming move made. */
int gw_volume_delete(const char *root, const char *name, struct gw_err *err);

struct gw_volume_info {
	char name[65];
	uint64_t size;
	int64_t created_ns;
	char user[65];		/* a container that mounts it, "" for none */
};

/* Every volume, sorted by name; free *out. */
int gw_volume_list(const char *root, struct gw_volume_info **out, size_t *n, struct gw_err *err);

#endif
