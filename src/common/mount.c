/* Volume mount specs (include/godwit/mount.h): "NAME:/target[:ro|:rw]". */
#include <stdio.h>
#include <string.h>

#include "godwit/mount.h"
#include "godwit/util.h"

int gw_mount_parse(const char *spec, struct gw_mount *m, struct gw_err *err)
{
	memset(m, 0, sizeof(*m));
	if (!spec || !*spec)
		return gw_err_set(err, EINVAL, "empty volume spec (want NAME:/path[:ro])");
	if (spec[0] == '/' || spec[0] == '.' || spec[0] == '~')
		return gw_err_set(err, ENOTSUP,
				  "volume \"%.128s\": host directories cannot be mounted (a container "
				  "must be able to move to another host, and its directory would not "
				  "come along): use a named volume, NAME:/path",
				  spec);
	const char *c1 = strchr(spec, ':');
	if (!c1 || (size_t)(c1 - spec) >= sizeof(m->name))
		return gw_err_set(err, EINVAL, "volume \"%.128s\": want NAME:/path[:ro]", spec);
	memcpy(m->name, spec, (size_t)(c1 - spec));
	if (!gw_valid_name(m->name))
		return gw_err_set(err, EINVAL, "volume \"%.128s\": invalid volume name (want "
				  "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63})", spec);
	const char *t = c1 + 1, *c2 = strchr(t, ':');
	size_t tl = c2 ? (size_t)(c2 - t) : strlen(t);
	if (tl >= sizeof(m->target))
		return gw_err_set(err, ENAMETOOLONG, "volume \"%.128s\": path longer than %d bytes",
				  spec, GW_MOUNT_TARGET_MAX);
	memcpy(m->target, t, tl);
	m->target[tl] = '\0';
	if (!gw_mount_target_ok(m->target))
		return gw_err_set(err, EINVAL, "volume \"%.128s\": the path in the container must be "
				  "absolute, not \"/\", without \".\", \"..\", \"//\" or \",\"", spec);
	if (tl > 1 && m->target[tl - 1] == '/')
		m->target[tl - 1] = '\0';
	if (c2) {
		if (strcmp(c2 + 1, "ro") == 0)
			m->ro = 1;
		else if (strcmp(c2 + 1, "rw") != 0)
			return gw_err_set(err, EINVAL, "volume \"%.128s\": unknown option \"%.32s\" "
					  "(ro or rw)", spec, c2 + 1);
	}
	return 0;
}

void gw_mount_format(const struct gw_mount *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s%s", m->name, m->target, m->ro ? ":ro" : "");
}

int gw_mounts_parse(char *const *specs, struct gw_mount *out, int *n, struct gw_err *err)
{
	*n = 0;
	for (size_t i = 0; specs && specs[i]; i++) {
		if (i == GW_MOUNTS_MAX)
			return gw_err_set(err, E2BIG, "more than %d volumes", GW_MOUNTS_MAX);
		int r = gw_mount_parse(specs[i], &out[i], err);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(out[j].name, out[i].name) == 0)
				return gw_err_set(err, EINVAL, "volume %s given twice", out[i].name);
			if (strcmp(out[j].target, out[i].target) == 0)
				return gw_err_set(err, EINVAL, "two volumes on %s", out[i].target);
		}
		*n = (int)i + 1;
	}
	return 0;
}
