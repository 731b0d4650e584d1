/* Layer application: reads a layer tar with libarchive and writes it onto a root filesystem
 * tree with archive_write_disk, applying OCI/docker whiteouts. Every entry is untrusted: its
 * path is normalised and checked here (no "..", no walking through a symlink, hard links only
 * to existing non-directories inside the tree) before libarchive, with its own SECURE_* checks
 * as a second line, writes it. Also used for the outer tar of an image archive (no whiteouts). */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "godwit/image.h"
#include "godwit/util.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

struct layer_ctx {
	struct layer_stats *stats;
	int whiteouts;		/* 0 for an outer image tar: ".wh." names are plain files */
	char **paths;		/* entries written by this layer, for opaque directories */
	size_t n_paths, cap_paths;
	size_t n_entries;
};

/* Strip leading "/" and "./", drop "." and empty components, refuse "..". "" = the root. */
static int norm_path(const char *in, char out[LAYER_PATH_MAX + 1], struct gw_err *err)
{
	size_t o = 0;
	if (strlen(in) > LAYER_PATH_MAX)
		return gw_err_set(err, ENAMETOOLONG, "entry path longer than %d bytes",
				  LAYER_PATH_MAX);
	for (const char *c = in; *c;) {
		size_t l = strcspn(c, "/");
		if (l == 2 && !strncmp(c, "..", 2))
			return gw_err_set(err, EPERM, "entry '%.200s': path traversal ('..') refused",
					  in);
		if (l && !(l == 1 && c[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, c, l);
			o += l;
		}
		c += l;
		c += *c == '/';
	}
	out[o] = '\0';
	return 0;
}

/* With the working directory at the tree's root: fail if any existing directory component of
 * rel (and rel itself when include_last) is a symlink, so nothing is written through one. */
static int check_no_symlink(const char *rel, int include_last, struct gw_err *err)
{
	char buf[LAYER_PATH_MAX + 1];
	struct stat st;
	strcpy(buf, rel);
	size_t len = strlen(buf);
	for (size_t i = 0; i <= len; i++) {
		if (buf[i] != '/' && !(buf[i] == '\0' && include_last && len))
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				return 0;
			return gw_err_sys(err, errno, "entry '%.200s': stat %.200s", rel, buf);
		}
		if (S_ISLNK(st.st_mode))
			return gw_err_set(err, EPERM, "entry '%.200s' walks through symlink '%.200s' "
					  "(symlink escape refused)", rel, buf);
		if (!S_ISDIR(st.st_mode))
			return 0;
		buf[i] = saved;
	}
	return 0;
}

static int remember(struct layer_ctx *c, const char *path, struct gw_err *err)
{
	if (c->n_paths == c->cap_paths) {
		size_t cap = c->cap_paths ? c->cap_paths * 2 : 256;
		char **np = realloc(c->paths, cap * sizeof(*np));
		if (!np)
			return gw_err_set(err, ENOMEM, "out of memory");
		c->paths = np;
		c->cap_paths = cap;
	}
	if (!(c->paths[c->n_paths] = strdup(path)))
		return gw_err_set(err, ENOMEM, "out of memory");
	c->n_paths++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Empty directory dir of what lower layers put there (this layer's entries stay). */
static int apply_opaque(struct layer_ctx *c, const char *dir, struct gw_err *err)
{
	int r = check_no_symlink(dir, 1, err);
	if (r < 0)
		return r;
	DIR *d = opendir(*dir ? dir : ".");
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : gw_err_sys(err, errno, "open %s", dir);
	qsort(c->paths, c->n_paths, sizeof(*c->paths), cmp_str);
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *full = *dir ? gw_strdup_printf("%s/%s", dir, de->d_name)
					       : strdup(de->d_name);
		if (!full) {
			r = gw_err_set(err, ENOMEM, "out of memory");
			break;
		}
		if (!bsearch(&full, c->paths, c->n_paths, sizeof(*c->paths), cmp_str))
			r = gw_rm_rf(full, err);
	}
	closedir(d);
	return r;
}

/* A whiteout entry at path (normalised) whose last component starts with ".wh.". */
static int apply_whiteout(struct layer_ctx *c, const char *path, struct gw_err *err)
{
	char dir[LAYER_PATH_MAX + 1];
	const char *base = strrchr(path, '/');
	size_t dlen = base ? (size_t)(base - path) : 0;
	base = base ? base + 1 : path;
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if (!strcmp(base, WH_OPAQUE))
		return apply_opaque(c, dir, err);
	if (!strncmp(base, WH_PREFIX WH_PREFIX, 8))
		return 0; /* other aufs metadata (.wh..wh.plnk, ...): not content */
	const char *name = base + strlen(WH_PREFIX);
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return gw_err_set(err, EPERM, "whiteout '%.200s' names no file", path);
	char target[LAYER_PATH_MAX + 1];
	size_t off = dlen ? dlen + 1 : 0;
	memcpy(target, path, off);
	strcpy(target + off, name); /* shorter than path by ".wh." */
	int r = check_no_symlink(target, 0, err);
	return r < 0 ? r : gw_rm_rf(target, err);
}

static int copy_data(struct archive *in, struct archive *out, const char *path,
		     struct gw_err *err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(in, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return gw_err_set(err, EIO, "read %.200s: %s", path, archive_error_string(in));
		if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
			return gw_err_set(err, EIO, "write %.200s: %s", path,
					  archive_error_string(out));
	}
}

static int apply_entry(struct layer_ctx *c, struct archive *in, struct archive *out,
		       struct archive_entry *e, struct gw_err *err)
{
	char path[LAYER_PATH_MAX + 1], link[LAYER_PATH_MAX + 1];
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		return gw_err_set(err, EINVAL, "entry without a path");
	int r = norm_path(raw, path, err);
	if (r < 0)
		return r;
	if (!*path)
		return 0; /* the root directory itself */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (c->whiteouts && !strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
		return apply_whiteout(c, path, err);
	mode_t type = archive_entry_filetype(e);
	if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK) {
		c->stats->skipped++;
		return 0;
	}
	if ((r = check_no_symlink(path, 0, err)) < 0)
		return r;
	const char *hl = archive_entry_hardlink(e);
	if (hl) {
		struct stat st;
		if ((r = norm_path(hl, link, err)) < 0)
			return gw_err_prefix(err, "hard link %.200s", path);
		if (!*link || (r = check_no_symlink(link, 0, err)) < 0)
			return r < 0 ? r : gw_err_set(err, EPERM, "hard link %.200s: bad target",
						      path);
		if (fstatat(AT_FDCWD, link, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
			return gw_err_set(err, EPERM, "hard link %.200s -> %.200s: target is not an "
					  "existing file in the image", path, link);
		archive_entry_set_hardlink(e, link);
	}
	archive_entry_set_pathname(e, path);
	/* every entry that carries data counts, a hard link with data too (pax allows it) */
	if (archive_entry_size(e) > 0) {
		uint64_t sz = (uint64_t)archive_entry_size(e);
		if (sz > c->stats->max_bytes || c->stats->bytes > c->stats->max_bytes - sz)
			return gw_err_set(err, EFBIG, "unpacked size exceeds %llu bytes",
					  (unsigned long long)c->stats->max_bytes);
		c->stats->bytes += sz;
	}
	if (c->whiteouts && (r = remember(c, path, err)) < 0)
		return r;
	if (archive_write_header(out, e) < ARCHIVE_WARN)
		return gw_err_set(err, EIO, "extract %.200s: %s", path, archive_error_string(out));
	if (archive_entry_size(e) > 0 && (r = copy_data(in, out, path, err)) < 0)
		return r;
	if (archive_write_finish_entry(out) < ARCHIVE_WARN)
		return gw_err_set(err, EIO, "extract %.200s: %s", path, archive_error_string(out));
	return 0;
}

static struct archive *open_reader(int fd, int raw, struct gw_err *err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		gw_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_bzip2(a);
	if (raw)
		archive_read_support_format_raw(a);
	else
		archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		gw_err_set(err, EINVAL, "not a readable tar: %s", archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int layer_diff_id(int fd, char hex[65], struct gw_err *err)
{
	struct archive *a = open_reader(fd, 1, err);
	struct archive_entry *e;
	if (!a)
		return -EINVAL;
	int r = archive_read_next_header(a, &e) == ARCHIVE_OK ? 0 : -EINVAL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (r < 0 || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		r = r < 0 ? gw_err_set(err, EINVAL, "unreadable layer: %s", archive_error_string(a))
			  : gw_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	const void *buf;
	size_t size;
	la_int64_t off;
	int ar;
	/* bounded: a layer that uncompresses beyond what unpacking allows (its data, plus a
	 * generous 2 KiB of headers per entry) is refused here, not hashed for hours */
	uint64_t total = 0, max = IMAGE_UNPACKED_MAX + (uint64_t)LAYER_ENTRIES_MAX * 2048;
	while ((ar = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if ((total += size) > max) {
			r = gw_err_set(err, EFBIG, "layer uncompresses to more than %llu bytes",
				       (unsigned long long)max);
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, size);
	}
	if (ar != ARCHIVE_EOF) {
		r = gw_err_set(err, EIO, "layer truncated or corrupt: %s", archive_error_string(a));
		goto out;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		r = gw_err_set(err, EIO, "sha256 failed");
		goto out;
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
	EVP_MD_CTX_free(ctx);
	archive_read_free(a);
	return r;
}

static int unpack(int fd, const char *dir, struct layer_ctx *c, struct gw_err *err)
{
	struct archive *in = open_reader(fd, 0, err);
	if (!in)
		return -EINVAL;
	struct archive *out = archive_write_disk_new();
	cleanup_close int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;
	if (!out || cwd < 0) {
		r = gw_err_sys(err, out ? errno : ENOMEM, "prepare extraction");
		goto out;
	}
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
					    ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_UNLINK |
					    ARCHIVE_EXTRACT_SECURE_SYMLINKS |
					    ARCHIVE_EXTRACT_SECURE_NODOTDOT |
					    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	if (chdir(dir) < 0) {
		r = gw_err_sys(err, errno, "chdir %s", dir);
		goto out;
	}
	struct archive_entry *e;
	for (;;) {
		int ar = archive_read_next_header(in, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = gw_err_set(err, EIO, "truncated or corrupt tar: %s",
				       archive_error_string(in));
			break;
		}
		if (++c->n_entries > LAYER_ENTRIES_MAX) {
			r = gw_err_set(err, E2BIG, "more than %d entries", LAYER_ENTRIES_MAX);
			break;
		}
		if ((r = apply_entry(c, in, out, e, err)) < 0)
			break;
	}
	/* Deferred directory permissions and times are applied here, relative to dir. */
	if (archive_write_close(out) < ARCHIVE_WARN && r == 0)
		r = gw_err_set(err, EIO, "finish extraction: %s", archive_error_string(out));
	if (fchdir(cwd) < 0 && r == 0)
		r = gw_err_sys(err, errno, "restore working directory");
out:
	archive_write_free(out);
	archive_read_free(in);
	for (size_t i = 0; i < c->n_paths; i++)
		free(c->paths[i]);
	free(c->paths);
	c->paths = NULL;
	c->n_paths = c->cap_paths = 0;
	return r;
}

int layer_apply(int fd, const char *rootfs, const char *diff_id, struct layer_stats *stats,
		struct gw_err *err)
{
	struct layer_ctx c = { .stats = stats, .whiteouts = 1 };
	if (!stats->max_bytes)
		stats->max_bytes = IMAGE_UNPACKED_MAX;
	if (diff_id) {
		char hex[65];
		off_t start = lseek(fd, 0, SEEK_CUR);
		if (start < 0)
			return gw_err_sys(err, errno, "seek layer");
		int r = layer_diff_id(fd, hex, err);
		if (r < 0)
			return r;
		if (!oci_valid_digest(diff_id) || strcmp(diff_id + 7, hex))
			return gw_err_set(err, EBADMSG, "layer content does not match its diff_id "
					  "%.80s (got sha256:%s)", diff_id, hex);
		if (lseek(fd, start, SEEK_SET) < 0)
			return gw_err_sys(err, errno, "seek layer");
	}
	return unpack(fd, rootfs, &c, err);
}

int layer_unpack_plain(int fd, const char *dir, uint64_t max_bytes, struct gw_err *err)
{
	struct layer_stats stats = { .max_bytes = max_bytes };
	struct layer_ctx c = { .stats = &stats, .whiteouts = 0 };
	return unpack(fd, dir, &c, err);
}
