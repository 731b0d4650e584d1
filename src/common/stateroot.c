/* The state root (include/godwit/util.h): every image, disk, log and key of the host lives
 * under it, so it is made 0700 and used only when the user running godwit owns it. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/util.h"

static int private_dir(const char *path, struct gw_err *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return gw_err_sys(err, errno, "mkdir %s", path);
	struct stat st;
	if (stat(path, &st) < 0)
		return gw_err_sys(err, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return gw_err_set(err, ENOTDIR, "%s is not a directory", path);
	if (st.st_uid != geteuid())
		return gw_err_set(err, EPERM, "%s is owned by uid %u, not by this user (uid %u): "
				  "godwit uses no state root that someone else controls", path,
				  (unsigned)st.st_uid, (unsigned)geteuid());
	/* a root made by an older godwit was 0755: tighten it */
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
		return gw_err_sys(err, errno, "chmod 0700 %s", path);
	return 0;
}

int gw_root_prepare(const char *root, struct gw_err *err)
{
	if (!root || root[0] != '/')
		return gw_err_set(err, EINVAL, "the state root must be an absolute path, not \"%s\"",
				  root ? root : "");
	int r = private_dir(root, err);
	const char *subs[] = { "images", "containers", "volumes" };
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(subs); i++) {
		cleanup_free char *p = gw_strdup_printf("%s/%s", root, subs[i]);
		r = p ? private_dir(p, err) : gw_err_set(err, ENOMEM, "out of memory");
	}
	return r;
}
