/* QEMU's confinement (include/godwit/hv.h, docs/security.md): run in QEMU's child between fork
 * and exec, as root, without allocating (another thread of the shim, a restore's STATE check,
 * may have held the allocator's lock at the fork: under ASan the child would wait for good). A mount namespace of its own in which the state root is an empty,
 * read-only tmpfs showing only the files this VM uses at their own paths (its disk, console,
 * base disk, volumes), then the unprivileged user. QEMU's own -sandbox (seccomp) comes with its
 * command line. */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <pwd.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "godwit/hv.h"
#include "godwit/knobs.h"
#include "godwit/util.h"

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && path[n] == '/';
}

/* An empty file or directory at path (and its parents), where a kept mount goes. */
static int make_spot(const char *path, int dir, struct gw_err *err)
{
	char parent[PATH_MAX];
	if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent))
		return gw_err_set(err, ENAMETOOLONG, "path too long: %.100s", path);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		int r = gw_mkdir_p(parent, 0755, err);
		if (r < 0)
			return r;
	}
	if (dir)
		return mkdir(path, 0755) < 0 && errno != EEXIST ? gw_err_sys(err, errno, "mkdir %s", path)
								: 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gw_err_sys(err, errno, "create %s", path);
	close(fd);
	return 0;
}

/* The devices QEMU opens by path: /dev/userfaultfd (post-copy's page faults), /dev/net/tun
 * (the tap, by name), /dev/kvm. Where the host keeps them root's (here /dev/userfaultfd and
 * /dev/net/tun are 0600), QEMU's user gets a node of its own for each, bound over the host's
 * in this namespace only. */
static const char *const jail_devs[] = { "/dev/userfaultfd", "/dev/net/tun", "/dev/kvm" };

static int devs_for(const struct hv_jail *j, struct gw_err *err)
{
	for (size_t i = 0; j->uid && i < ARRAY_SIZE(jail_devs); i++) {
		struct stat st;
		if (stat(jail_devs[i], &st) < 0 || !S_ISCHR(st.st_mode))
			continue;
		char node[PATH_MAX];
		if (snprintf(node, sizeof(node), "%s/.dev%zu", j->hide, i) >= (int)sizeof(node))
			return gw_err_set(err, ENAMETOOLONG, "path too long: %.100s", j->hide);
		if (mknod(node, S_IFCHR | 0600, st.st_rdev) < 0 || chown(node, j->uid, j->gid) < 0)
			return gw_err_sys(err, errno, "mknod %s", node);
		if (mount(node, jail_devs[i], NULL, MS_BIND, NULL) < 0)
			return gw_err_sys(err, errno, "bind %s over %s", node, jail_devs[i]);
	}
	return 0;
}

int hv_jail_enter(const struct hv_jail *j, struct gw_err *err)
{
	if (!j->hide || j->hide[0] != '/' || !j->hide[1])
		return gw_err_set(err, EINVAL, "jail: the directory to hide must be absolute, not /");
	if (j->n_keep < 0 || j->n_keep > HV_JAIL_KEEP_MAX)
		return gw_err_set(err, EINVAL, "jail: %d paths to keep", j->n_keep);
	if (unshare(CLONE_NEWNS) < 0)
		return gw_err_sys(err, errno, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return gw_err_sys(err, errno, "make / private");
	/* what stays visible, taken before the tmpfs hides it */
	int fds[HV_JAIL_KEEP_MAX];
	int dirs[HV_JAIL_KEEP_MAX];
	int r = 0;
	for (int i = 0; i < j->n_keep; i++) {
		fds[i] = -1;
		struct stat st;
		if (r < 0 || !under(j->keep[i], j->hide))
			continue;
		if (stat(j->keep[i], &st) < 0) {
			r = gw_err_sys(err, errno, "stat %s", j->keep[i]);
			continue;
		}
		dirs[i] = S_ISDIR(st.st_mode);
		fds[i] = open_tree(AT_FDCWD, j->keep[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (fds[i] < 0)
			r = gw_err_sys(err, errno, "open_tree %s", j->keep[i]);
	}
	if (r == 0 && mount("godwit-jail", j->hide, "tmpfs", MS_NOSUID | MS_NOEXEC,
			    "mode=0755,size=64k") < 0)
		r = gw_err_sys(err, errno, "mount a tmpfs on %s", j->hide);
	for (int i = 0; r == 0 && i < j->n_keep; i++) {
		if (fds[i] < 0)
			continue;
		if ((r = make_spot(j->keep[i], dirs[i], err)) < 0)
			break;
		if (move_mount(fds[i], "", AT_FDCWD, j->keep[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			r = gw_err_sys(err, errno, "mount %s again", j->keep[i]);
		else if (j->keep_ro[i] &&
			 mount(NULL, j->keep[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
			       MS_NODEV | MS_NOEXEC, NULL) < 0)
			r = gw_err_sys(err, errno, "remount %s read-only", j->keep[i]);
	}
	for (int i = 0; i < j->n_keep; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r == 0)
		r = devs_for(j, err);
	/* in a PID namespace of its own, a /proc of that namespace: no other process of the host
	 * (another VM's QEMU of the same user above all: its /proc/PID/root and mem) is there */
	if (r == 0 && j->own_pids && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
					   NULL) < 0)
		r = gw_err_sys(err, errno, "mount /proc");
	if (r == 0 && mount(NULL, j->hide, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
			    "mode=0755,size=64k") < 0)
		r = gw_err_sys(err, errno, "remount %s read-only", j->hide);
	if (r < 0)
		return r;
	if (chdir("/") < 0)
		return gw_err_sys(err, errno, "chdir /");
	if (!j->uid)
		return 0;
	if (setgroups((size_t)j->n_groups, j->groups) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
	    setresuid(j->uid, j->uid, j->uid) < 0)
		return gw_err_sys(err, errno, "become uid %u", (unsigned)j->uid);
	return 0;
}

int hv_jail_user(struct hv_jail *j, struct gw_err *err)
{
	const char *name = gw_knobs()->qemu_user ? gw_knobs()->qemu_user : HV_QEMU_USER;
	struct passwd *pw = getpwnam(name);
	if (!pw)
		return gw_err_set(err, ENOENT, "QEMU's user \"%s\" does not exist (scripts/deps.sh makes "
				  "%s; GODWIT_QEMU_USER names another)", name, HV_QEMU_USER);
	j->uid = pw->pw_uid;
	j->gid = pw->pw_gid;
	int n = HV_JAIL_GROUPS_MAX;
	if (getgrouplist(name, pw->pw_gid, j->groups, &n) < 0)
		return gw_err_set(err, E2BIG, "QEMU's user \"%s\" is in more than %d groups", name,
				  HV_JAIL_GROUPS_MAX);
	j->n_groups = n;
	return 0;
}
