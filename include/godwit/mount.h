/* A container's volume mounts as `run -v` gives them and its config keeps them:
 * "NAME:/target[:ro|:rw]", NAME a named volume (include/godwit/volume.h, docs/volumes.md).
 * Parsed here, in common, because the container record checks every spec it loads (a
 * migration's CONFIG carries the config from another host). */
#ifndef GODWIT_MOUNT_H
#define GODWIT_MOUNT_H

#include <string.h>

#include "godwit/err.h"

/* At most this many volumes per container (each is one more disk in the VM and in a move). */
#define GW_MOUNTS_MAX 4
#define GW_MOUNT_TARGET_MAX 255

struct gw_mount {
	char name[65];				/* the volume */
	char target[GW_MOUNT_TARGET_MAX + 1];	/* absolute, normalised, inside the container */
	int ro;
};

/* A path in the container a volume may be mounted on: absolute, not "/", at most
 * GW_MOUNT_TARGET_MAX bytes, no ",", and every component non-empty and neither "." nor ".."
 * (a trailing "/" is no component). Inline: the guest agent checks it too. */
static inline int gw_mount_target_ok(const char *t)
{
	if (t[0] != '/' || !t[1] || strlen(t) > GW_MOUNT_TARGET_MAX || strchr(t, ','))
		return 0;
	for (const char *p = t + 1; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/' && *++p == '\0')
			break;
	}
	return 1;
}

/* Parse spec. A host path as the source ("/srv/data:/data") is refused with -ENOTSUP and a
 * message that says why (a host directory cannot move with the container); so is a target
 * that is not absolute, holds "..", ".", an empty component or a comma, or is "/". */
int gw_mount_parse(const char *spec, struct gw_mount *m, struct gw_err *err);

/* The canonical spec of m ("NAME:/target" or "NAME:/target:ro") into buf (len >= 330). */
void gw_mount_format(const struct gw_mount *m, char *buf, size_t len);

/* Parse a NULL-terminated list (NULL = none): at most GW_MOUNTS_MAX, no volume twice, no
 * target twice. *n gets the count; out has room for GW_MOUNTS_MAX. */
int gw_mounts_parse(char *const *specs, struct gw_mount *out, int *n, struct gw_err *err);

#endif
