/* godwit cp: files and directories between a container and the host, both ways, as docker
 * cp. The guest side is the container's own `tar` (run as an exec session: `tar -cf -` to
 * copy out, `tar -xf -` fed through stdin to copy in), as kubectl cp does: a container
 * without tar cannot be copied to or from. The host side is libarchive: out of the container
 * every entry must stay under the destination (no "..", no absolute path, no path through a
 * symlink: ARCHIVE_EXTRACT_SECURE_*) and must lie under the copied name; owners, setuid and
 * setgid bits are not restored (the files are the caller's, modes through the umask). A destination that is a directory gets the source inside it; otherwise the
 * source takes the destination's name. `-` as the host side is a tar stream on stdout/stdin. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/util.h"

#define CP_ERR_MAX 1024

/* run argv in the container: stdin from in_fd (-1: none), stdout to out_fd; its status, and
 * what it wrote to stderr in msg */
static int guest_run(struct gw_cli *cli, const char *name, const char *const *argv, int in_fd,
		     int out_fd, char *msg, size_t msglen, struct gw_err *err)
{
	int fd = cli_connect(cli, name, err);
	if (fd < 0)
		return fd;
	cleanup_close int efd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	json_object *args = json_object_new_object(), *av = json_object_new_array();
	for (size_t i = 0; argv[i]; i++)
		json_object_array_add(av, json_object_new_string(argv[i]));
	json_object_object_add(args, "argv", av);
	if (in_fd >= 0)
		json_object_object_add(args, "stdin", json_object_new_boolean(1));
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, "exec", args, NULL, NULL, NULL, 10000, err);
	json_object_put(args);
	int status = -1;
	struct cli_session_opts so = { .in_fd = in_fd, .sigfd = -1, .out_fd = out_fd,
				       .err_fd = efd >= 0 ? efd : 2 };
	if (r == 0)
		r = cli_session_run(fd, &rd, &so, &status, err);
	ctl_reader_free(&rd);
	close(fd);
	ssize_t n = efd >= 0 ? pread(efd, msg, msglen - 1, 0) : 0;
	msg[n > 0 ? n : 0] = 0;
	if (n > 0 && msg[n - 1] == '\n')
		msg[n - 1] = 0;
	if (r < 0)
		return r;
	if (status < 0)
		return gw_err_set(err, EPIPE, "the container stopped during the copy");
	return status;
}

static int tar_failed(int status, const char *what, const char *msg, struct gw_err *err)
{
	if (status == 127)
		return gw_err_set(err, ENOENT, "the container has no tar (godwit cp uses the "
				  "container's tar, as kubectl cp does): %s", msg);
	return gw_err_set(err, EIO, "%s in the container failed (status %d): %s", what, status,
			  msg);
}

/* an entry's name under the copied top name `from`, renamed to `to`; NULL if outside it */
static char *rename_top(const char *name, const char *from, const char *to)
{
	while (!strncmp(name, "./", 2))
		name += 2;
	size_t fl = strlen(from);
	if (strncmp(name, from, fl) || (name[fl] && name[fl] != '/'))
		return NULL;
	return gw_strdup_printf("%s%s", to, name + fl);
}

static int copy_fd(int from, int to)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(from, buf, sizeof(buf))) > 0)
		if (gw_write_full(to, buf, (size_t)n) < 0)
			return -errno;
	return n < 0 ? -errno : 0;
}

/* the tar in tfd (its top entry `from`) into dir, the top renamed `to` */
static int extract(int tfd, const char *dir, const char *from, const char *to, struct gw_err *err)
{
	if (chdir(dir) < 0)
		return gw_err_sys(err, errno, "%s", dir);
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	archive_read_support_format_tar(in);
	/* no ARCHIVE_EXTRACT_PERM or OWNER: a container's setuid file must not become a
	 * setuid file of the host's root; modes go through the umask */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME |
				       ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
				       ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	int r = archive_read_open_fd(in, tfd, 65536) == ARCHIVE_OK ? 0
		: gw_err_set(err, EIO, "the container's tar: %s", archive_error_string(in));
	struct archive_entry *e;
	int n = 0, ar;
	while (r == 0 && (ar = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		cleanup_free char *nn = rename_top(archive_entry_pathname(e), from, to);
		const char *hl = archive_entry_hardlink(e);
		cleanup_free char *nh = hl ? rename_top(hl, from, to) : NULL;
		if (!nn || (hl && !nh)) {
			r = gw_err_set(err, EINVAL, "the container's tar holds \"%.200s\", outside %s",
				       archive_entry_pathname(e), from);
			break;
		}
		archive_entry_set_pathname(e, nn);
		if (nh)
			archive_entry_set_hardlink(e, nh);
		if (archive_read_extract2(in, e, out) != ARCHIVE_OK)
			r = gw_err_set(err, EIO, "%s: %s", nn, archive_error_string(out));
		n++;
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = gw_err_set(err, EIO, "the container's tar: %s", archive_error_string(in));
	if (r == 0 && !n)
		r = gw_err_set(err, ENOENT, "nothing was copied");
	archive_write_free(out);
	archive_read_free(in);
	return r;
}

static int cp_out(struct gw_cli *cli, const char *name, const char *src, const char *dst,
		  struct gw_err *err)
{
	cleanup_free char *s1 = strdup(src), *s2 = strdup(src);
	const char *dir = dirname(s1), *base = basename(s2);
	if (!strcmp(base, "/"))
		base = ".";
	cleanup_close int tfd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tfd < 0)
		return gw_err_sys(err, errno, "a temporary file in /tmp");
	const char *argv[] = { "tar", "-cf", "-", "-C", dir, base, NULL };
	char msg[CP_ERR_MAX];
	int st = guest_run(cli, name, argv, -1, tfd, msg, sizeof(msg), err);
	if (st < 0)
		return st;
	if (st)
		return tar_failed(st, "tar -c", msg, err);
	lseek(tfd, 0, SEEK_SET);
	if (!strcmp(dst, "-"))
		return copy_fd(tfd, 1) < 0 ? gw_err_sys(err, errno, "stdout") : 0;
	struct stat sb;
	if (stat(dst, &sb) == 0 && S_ISDIR(sb.st_mode))
		return extract(tfd, dst, base, base, err);
	cleanup_free char *d1 = strdup(dst), *d2 = strdup(dst);
	return extract(tfd, dirname(d1), base, basename(d2), err);
}

/* the host's src into a tar in tfd, its top named `to` */
static int pack(const char *src, const char *to, int tfd, struct gw_err *err)
{
	cleanup_free char *s1 = strdup(src), *s2 = strdup(src);
	const char *base = basename(s2);
	if (chdir(dirname(s1)) < 0)
		return gw_err_sys(err, errno, "%s", src);
	struct archive *disk = archive_read_disk_new(), *out = archive_write_new();
	archive_write_set_format_pax_restricted(out);
	archive_read_disk_set_standard_lookup(disk);
	int r = archive_write_open_fd(out, tfd) == ARCHIVE_OK &&
			archive_read_disk_open(disk, base) == ARCHIVE_OK
		? 0 : gw_err_set(err, EIO, "%s: %s", src, archive_error_string(disk));
	struct archive_entry *e = archive_entry_new();
	int ar;
	while (r == 0 && (ar = archive_read_next_header2(disk, e)) == ARCHIVE_OK) {
		archive_read_disk_descend(disk);
		cleanup_free char *nn = rename_top(archive_entry_pathname(e), base, to);
		if (!nn)
			continue;
		archive_entry_set_pathname(e, nn);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			r = gw_err_set(err, EIO, "%s: %s", nn, archive_error_string(out));
			break;
		}
		const char *path = archive_entry_sourcepath(e);
		cleanup_close int fd = archive_entry_filetype(e) == AE_IFREG && path
					       ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		char buf[65536];
		ssize_t n;
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			archive_write_data(out, buf, (size_t)n);
		archive_entry_clear(e);
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = gw_err_set(err, EIO, "%s: %s", src, archive_error_string(disk));
	archive_entry_free(e);
	archive_read_free(disk);
	if (archive_write_close(out) != ARCHIVE_OK && r == 0)
		r = gw_err_set(err, EIO, "%s", archive_error_string(out));
	archive_write_free(out);
	return r;
}

static int cp_in(struct gw_cli *cli, const char *src, const char *name, const char *dst,
		 struct gw_err *err)
{
	char msg[CP_ERR_MAX];
	const char *test[] = { "test", "-d", dst, NULL };
	int st = guest_run(cli, name, test, -1, -1, msg, sizeof(msg), err);
	if (st < 0)
		return st;
	if (st == 127)
		return tar_failed(st, "test", msg, err);
	int into = st == 0 || !strcmp(src, "-");
	if (!into && dst[strlen(dst) - 1] == '/')
		return gw_err_set(err, ENOENT, "%s: no such directory in the container", dst);
	cleanup_free char *d1 = strdup(dst), *d2 = strdup(dst), *s2 = strdup(src);
	const char *dir = into ? dst : dirname(d1), *to = into ? basename(s2) : basename(d2);
	cleanup_close int tfd = -1;
	if (strcmp(src, "-")) {
		struct stat sb;
		if (lstat(src, &sb) < 0)
			return gw_err_sys(err, errno, "%s", src);
		if ((tfd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0)
			return gw_err_sys(err, errno, "a temporary file in /tmp");
		if ((st = pack(src, to, tfd, err)) < 0)
			return st;
		lseek(tfd, 0, SEEK_SET);
	}
	const char *argv[] = { "tar", "-xf", "-", "-C", dir, NULL };
	st = guest_run(cli, name, argv, tfd >= 0 ? tfd : 0, 2, msg, sizeof(msg), err);
	if (st < 0)
		return st;
	return st ? tar_failed(st, "tar -x", msg, err) : 0;
}

/* "NAME:PATH" → 1 (name, path); a host path → 0 */
static int split(char *arg, char **name, char **path)
{
	char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');
	if (!colon || (slash && slash < colon))
		return 0;
	*colon = 0;
	*name = arg;
	*path = colon + 1;
	return 1;
}

int cmd_cp(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: godwit cp CONTAINER:SRC DEST|-\n"
			       "       godwit cp SRC|- CONTAINER:DEST\n\n"
			       "Copy files or directories between a container and the host (with the\n"
			       "container's tar). A DEST that is a directory gets SRC inside it; else SRC\n"
			       "takes DEST's name. \"-\": a tar stream on stdout or stdin.\n\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("cp", "invalid option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("cp", "want SRC and DEST");
	char *n1, *p1, *n2, *p2;
	int c1 = split(argv[optind], &n1, &p1), c2 = split(argv[optind + 1], &n2, &p2);
	if (c1 == c2)
		return cli_usage_error("cp", "one of SRC and DEST must be CONTAINER:PATH, the other "
				       "a host path");
	const char *gpath = c1 ? p1 : p2;
	if (gpath[0] != '/')
		return cli_usage_error("cp", "the container's path must be absolute");
	struct gw_err err = { 0 };
	int r = c1 ? cp_out(cli, n1, p1, argv[optind + 1], &err)
		   : cp_in(cli, argv[optind], n2, p2, &err);
	return r < 0 ? cli_fail("cp", &err) : 0;
}
