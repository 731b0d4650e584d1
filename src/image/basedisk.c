/* Base disks: one read-only ext4 image per image id, made from the unpacked root filesystem
 * with `mkfs.ext4 -d` (no loop devices, no root needed). Containers get a qcow2 overlay on it,
 * so the file system keeps a journal and generous free space: the guest writes into it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "godwit/image.h"
#include "godwit/util.h"

#define TREE_DEPTH_MAX 1024
#define MIB (1ull << 20)

struct tree_count {
	uint64_t bytes;
	uint64_t inodes;
	int depth;
	struct gw_err *err;
};

static int walk(int at, const char *name, void *arg)
{
	struct tree_count *tc = arg;
	struct stat st;
	if (tc->depth > TREE_DEPTH_MAX)
		return gw_err_set(tc->err, ELOOP, "directory tree deeper than %d", TREE_DEPTH_MAX);
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return gw_err_sys(tc->err, errno, "stat %s", name);
	tc->bytes += (uint64_t)st.st_blocks * 512 + 4096;
	tc->inodes++;
	if (!S_ISDIR(st.st_mode))
		return 0;
	tc->depth++;
	int r = gw_dir_each(at, name, walk, tc, tc->err);
	tc->depth--;
	return r;
}

static int tree_count(const char *dir, struct tree_count *tc, struct gw_err *err)
{
	*tc = (struct tree_count){ .err = err };
	return walk(AT_FDCWD, dir, tc);
}

int basedisk_tree_size(const char *dir, uint64_t *out, struct gw_err *err)
{
	struct tree_count tc;
	int r = tree_count(dir, &tc, err);
	if (r == 0)
		*out = tc.bytes;
	return r;
}

uint64_t basedisk_virtual_size(uint64_t size)
{
	uint64_t v = size > (UINT64_MAX - 32 * MIB) / 2 ? UINT64_MAX - MIB : 2 * size + 32 * MIB;
	if (v < 256 * MIB)
		v = 256 * MIB;
	return (v + MIB - 1) / MIB * MIB;
}

/* Run argv, collecting up to len-1 bytes of its stdout+stderr into out. */
static int run_capture(char *const argv[], char *out, size_t len, struct gw_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return gw_err_sys(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return gw_err_sys(err, errno, "fork");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		char buf[512];
		ssize_t k = read(p[0], buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		size_t take = (size_t)k < len - 1 - n ? (size_t)k : len - 1 - n;
		memcpy(out + n, buf, take);
		n += take;
	}
	out[n] = '\0';
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return gw_err_sys(err, errno, "wait for %s", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return gw_err_set(err, EIO, "%s failed (%s %d)%s%s", argv[0],
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), n ? ": " : "",
			  out);
}

int basedisk_build(const char *rootfs, const char *path, uint64_t virtual_size,
		   struct gw_err *err)
{
	struct tree_count tc;
	int r = tree_count(rootfs, &tc, err);
	if (r < 0)
		return gw_err_prefix(err, "base disk");
	if (virtual_size < tc.bytes + 16 * MIB)
		return gw_err_set(err, ENOSPC, "base disk: %llu bytes cannot hold a %llu-byte tree",
				  (unsigned long long)virtual_size, (unsigned long long)tc.bytes);
	/* Enough inodes for the tree twice over: a default bytes-per-inode ratio would run out
	 * on trees of many small files. */
	uint64_t inodes = virtual_size / 16384;
	if (inodes < 2 * tc.inodes + 4096)
		inodes = 2 * tc.inodes + 4096;
	char size_arg[32], inodes_arg[32], out[2048];
	snprintf(size_arg, sizeof(size_arg), "%lluk", (unsigned long long)(virtual_size >> 10));
	snprintf(inodes_arg, sizeof(inodes_arg), "%llu", (unsigned long long)inodes);
	/* The same image must give the same bytes on every host: a migrated container's overlay
	 * only holds its own writes, the rest is read from the destination's base. So the UUID
	 * and directory hash seed (which seed the metadata checksums) come from the image id in
	 * the path (".../img-<hex>/base.ext4") and mkfs's clock is fixed. */
	char uuid[40] = "", seed_arg[64] = "";
	const char *hex = strstr(path, "img-");
	if (hex && strspn(hex + 4, "0123456789abcdef") >= 32) {
		hex += 4;
		snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
			 hex + 16, hex + 20);
		snprintf(seed_arg, sizeof(seed_arg), "hash_seed=%s", uuid);
	}
	char *argv[24] = { "mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-N",
			   inodes_arg, "-L", "godwit" };
	int n = 13;
	if (uuid[0]) {
		argv[n++] = "-U";
		argv[n++] = uuid;
		argv[n++] = "-E";
		argv[n++] = seed_arg;
	}
	argv[n++] = "-d";
	argv[n++] = (char *)rootfs;
	argv[n++] = (char *)path;
	argv[n++] = size_arg;
	argv[n] = NULL;
	unlink(path);
	setenv("E2FSPROGS_FAKE_TIME", "1000000000", 1);
	r = run_capture(argv, out, sizeof(out), err);
	unsetenv("E2FSPROGS_FAKE_TIME");
	if (r < 0) {
		unlink(path);
		return gw_err_prefix(err, "base disk");
	}
	if (chmod(path, 0444) < 0)
		return gw_err_sys(err, errno, "chmod %s", path);
	return 0;
}

/* debugfs takes its commands as words split at spaces, so only paths of plain characters go
 * into them; and no "." or ".." component or empty one. */
static int debugfs_path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) > 1024 || strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
						      "NOPQRSTUVWXYZ0123456789._/+-") != strlen(p))
		return 0;
	return !strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 2 ? 2 : 0), "/.") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") && p[strlen(p) - 1] != '/';
}

/* debugfs's word on dst: a regular file of exactly size bytes */
static int check_placed(const char *img, const char *dst, long long size, struct gw_err *err)
{
	char cmd[1100], out[4096], want[48];
	snprintf(cmd, sizeof(cmd), "stat %s", dst);
	char *argv[] = { "debugfs", "-R", cmd, (char *)img, NULL };
	int r = run_capture(argv, out, sizeof(out), err);
	if (r < 0)
		return r;
	snprintf(want, sizeof(want), "Size: %lld\n", size);
	if (!strstr(out, "Type: regular") || !strstr(out, want))
		return gw_err_set(err, EIO, "%s did not land in the disk as a %lld-byte file", dst,
				  size);
	return 0;
}

int basedisk_add_files(const char *path, const struct basedisk_file *f, size_t n,
		       struct gw_err *err)
{
	if (n > BASEDISK_FILES_MAX)
		return gw_err_set(err, E2BIG, "%zu files to place, at most %d", n, BASEDISK_FILES_MAX);
	long long size[BASEDISK_FILES_MAX];
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (!debugfs_path_ok(f[i].src) || !debugfs_path_ok(f[i].dst))
			return gw_err_set(err, EINVAL, "%s at %s: only absolute paths of letters, "
					  "digits and ._+- can be placed", f[i].src, f[i].dst);
		if (lstat(f[i].src, &st) < 0)
			return gw_err_sys(err, errno, "%s", f[i].src);
		if (!S_ISREG(st.st_mode) || st.st_size > BASEDISK_FILE_MAX)
			return gw_err_set(err, EINVAL, "%s: not a regular file of at most %d bytes",
					  f[i].src, BASEDISK_FILE_MAX);
		size[i] = (long long)st.st_size;
	}
	if (n == 0)
		return 0;
	cleanup_free char *cmds = gw_strdup_printf("%s.debugfs", path);
	FILE *c = cmds ? fopen(cmds, "we") : NULL;
	if (!c)
		return gw_err_sys(err, cmds ? errno : ENOMEM, "write %s", cmds ? cmds : "commands");
	for (size_t i = 0; i < n; i++) {
		/* its parents (an existing one is only a harmless complaint), then the file */
		for (const char *s = strchr(f[i].dst + 1, '/'); s; s = strchr(s + 1, '/'))
			fprintf(c, "mkdir %.*s\n", (int)(s - f[i].dst), f[i].dst);
		fprintf(c, "rm %s\nwrite %s %s\n", f[i].dst, f[i].src, f[i].dst);
	}
	int r = fclose(c) == 0 ? 0 : gw_err_sys(err, errno, "write %s", cmds);
	char out[4096];
	char *argv[] = { "debugfs", "-w", "-f", cmds, (char *)path, NULL };
	if (r == 0)
		r = run_capture(argv, out, sizeof(out), err);
	unlink(cmds);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = check_placed(path, f[i].dst, size[i], err);
	return r < 0 ? gw_err_prefix(err, "place files in %s", path) : 0;
}
