/* QEMU's confinement as the shim prepares it (docs/security.md, "QEMU's confinement"): the
 * files QEMU opens handed to its user, the monitor and agent sockets bound here and passed as
 * fds with the console's (QEMU creates nothing in the container's directory), and the list of what its mount
 * namespace shows of the state root. hv_jail_enter (src/hv/jail.c) applies it in the child. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/image.h"
#include "godwit/tls.h"
#include "godwit/util.h"
#include "shim.h"

/* path (a file or a directory) given to QEMU's user, never through a symlink */
static int hand_over(const struct hv_jail *j, const char *path, struct gw_err *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	struct stat st;
	int r = fchown(fd, j->uid, j->gid) < 0 ? gw_err_sys(err, errno, "chown %s", path) : 0;
	/* the user's alone (qemu-img makes disks 0644) */
	if (r == 0 && fstat(fd, &st) == 0 && (st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0)
		r = gw_err_sys(err, errno, "chmod %s", path);
	close(fd);
	return r;
}

/* Where the jail's tmpfs goes: the state root, or the highest directory above it that QEMU's
 * user could not pass through (containerd's runc shim puts the root under /run/containerd,
 * 0700): from there down QEMU sees only what it keeps, on directories it may pass. */
static char *hide_point(const char *root)
{
	char *p = strdup(root);
	for (char *slash = p ? strchr(p + 1, '/') : NULL; slash; slash = strchr(slash + 1, '/')) {
		struct stat st;
		*slash = '\0';
		int closed = stat(p, &st) == 0 && !(st.st_mode & S_IXOTH);
		*slash = '/';
		if (closed) {
			*slash = '\0';
			return p;
		}
	}
	return p;
}

static void keep(struct hv_jail *j, const char *path, int ro)
{
	if (path && j->n_keep < HV_JAIL_KEEP_MAX) {
		j->keep[j->n_keep] = path;
		j->keep_ro[j->n_keep++] = ro;
	}
}

int shim_jail_prepare(struct container *ct, struct hv_vm_config *hc, struct shim_jail *sj,
		      struct gw_err *err)
{
	memset(sj, 0, sizeof(*sj));
	sj->qmp_fd = sj->agent_fd = sj->console_fd = sj->tap_fd = -1;
	struct hv_jail *j = &sj->j;
	int r = hv_jail_user(j, err);
	if (r < 0)
		return r;
	j->hide = sj->hide = hide_point(ct->root);
	sj->base = ct->cfg.image_id[0] ? gw_image_base_disk(ct->root, ct->cfg.image_id) : NULL;
	sj->vm_dir = gw_strdup_printf("%s/vm", ct->dir);
	if (!sj->vm_dir || !sj->hide)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (mkdir(sj->vm_dir, 0700) < 0 && errno != EEXIST)
		return gw_err_sys(err, errno, "mkdir %s", sj->vm_dir);
	if ((r = hand_over(j, sj->vm_dir, err)) < 0 ||
	    (hc->disk_path && (r = hand_over(j, hc->disk_path, err)) < 0))
		return r;
	for (int i = 0; i < hc->n_vols; i++)
		if ((r = hand_over(j, hc->vol_paths[i], err)) < 0)
			return r;
	if (hc->nic_tap && (r = gw_tap_set_owner(hc->nic_tap, j->uid, j->gid, err)) < 0)
		return r;
	keep(j, sj->vm_dir, 0);
	keep(j, hc->disk_path, 0);
	keep(j, sj->base, 1);
	keep(j, hc->kernel, 1);
	keep(j, hc->initrd, 1);
	for (int i = 0; i < hc->n_vols; i++)
		keep(j, hc->vol_paths[i], hc->vol_ro[i]);
	/* QEMU binds nothing: the shim's sockets, QEMU's fds 3 and 4 */
	if ((sj->qmp_fd = ctl_listen(hc->qmp_path, err)) < 0)
		return sj->qmp_fd;
	hc->qmp_fd = SHIM_JAIL_QMP_FD;
	if (hc->agent_path) {
		if ((sj->agent_fd = ctl_listen(hc->agent_path, err)) < 0)
			return sj->agent_fd;
		hc->agent_fd = SHIM_JAIL_AGENT_FD;
	}
	/* the console: into the shim, which keeps console.log to a size (console.c) */
	if ((r = shim_console_open(ct, &sj->console_fd, err)) < 0)
		return r;
	hc->console_fd = SHIM_JAIL_CONSOLE_FD;
	if (ct->netns_tap_fd >= 0) {
		sj->tap_fd = ct->netns_tap_fd;
		hc->nic_fd = SHIM_JAIL_TAP_FD;
	}
	hc->sandbox = 1;
	return 0;
}

int shim_jail_child(const struct shim_jail *sj, struct gw_err *err)
{
	int q = fcntl(sj->qmp_fd, F_DUPFD_CLOEXEC, 10);
	int a = sj->agent_fd >= 0 ? fcntl(sj->agent_fd, F_DUPFD_CLOEXEC, 10) : -1;
	int c = fcntl(sj->console_fd, F_DUPFD_CLOEXEC, 10);
	int t = sj->tap_fd >= 0 ? fcntl(sj->tap_fd, F_DUPFD_CLOEXEC, 10) : -1;
	if (q < 0 || c < 0 || (sj->agent_fd >= 0 && a < 0) || (sj->tap_fd >= 0 && t < 0) ||
	    dup2(q, SHIM_JAIL_QMP_FD) < 0 || (a >= 0 && dup2(a, SHIM_JAIL_AGENT_FD) < 0) ||
	    dup2(c, SHIM_JAIL_CONSOLE_FD) < 0 || (t >= 0 && dup2(t, SHIM_JAIL_TAP_FD) < 0))
		return gw_err_sys(err, errno, "pass the monitor's and console's sockets");
	return hv_jail_enter(&sj->j, err);
}

void shim_jail_release(struct shim_jail *sj)
{
	if (sj->qmp_fd >= 0)
		close(sj->qmp_fd);
	if (sj->agent_fd >= 0)
		close(sj->agent_fd);
	if (sj->console_fd >= 0)
		close(sj->console_fd);
	free(sj->base);
	free(sj->vm_dir);
	free(sj->hide);
	memset(sj, 0, sizeof(*sj));
	sj->qmp_fd = sj->agent_fd = sj->console_fd = sj->tap_fd = -1;
}

int shim_jail_socket(const char *path, struct gw_err *err)
{
	struct hv_jail j = { 0 };
	int r = hv_jail_user(&j, err);
	if (r == 0 && lchown(path, j.uid, j.gid) < 0)
		r = gw_err_sys(err, errno, "chown %s", path);
	return r;
}

/* QEMU's user cannot read the operator's key files (root's, 0600): it gets copies of the ones
 * its side needs, in the container's vm/ directory (which its namespace shows), for as long as
 * object-add takes to load them. */
#define TLS_FILE_MAX (64 * 1024)
int shim_jail_tls_copy(struct container *ct, const char *tls_dir, int server, char **out,
		       struct gw_err *err)
{
	const char *const *files = gw_tls_role_files(server);
	struct hv_jail j = { 0 };
	int r = hv_jail_user(&j, err);
	if (r < 0)
		return r;
	*out = gw_strdup_printf("%s/vm/tls", ct->dir);
	if (!*out)
		return gw_err_set(err, ENOMEM, "out of memory");
	gw_rm_rf(*out, NULL);
	if (mkdir(*out, 0700) < 0)
		r = gw_err_sys(err, errno, "mkdir %s", *out);
	if (r == 0)
		r = hand_over(&j, *out, err);
	for (int i = 0; r == 0 && i < 3; i++) {
		cleanup_free char *from = gw_strdup_printf("%s/%s", tls_dir, files[i]);
		cleanup_free char *to = gw_strdup_printf("%s/%s", *out, files[i]);
		cleanup_free char *buf = NULL;
		size_t len;
		if (!from || !to)
			r = gw_err_set(err, ENOMEM, "out of memory");
		else if ((r = gw_read_file(from, TLS_FILE_MAX, &buf, &len, err)) == 0 &&
			 (r = gw_write_file(to, buf, len, 0400, err)) == 0)
			r = hand_over(&j, to, err);
	}
	if (r < 0)
		shim_jail_tls_drop(out);
	return r;
}

void shim_jail_tls_drop(char **dir)
{
	if (*dir)
		gw_rm_rf(*dir, NULL);
	free(*dir);
	*dir = NULL;
}
