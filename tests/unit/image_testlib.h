/* Helpers for the image unit tests: write small tar files (plain or gzip) with libarchive,
 * make scratch directories, check paths. Header-only: each test binary includes it once. */
#ifndef GODWIT_IMAGE_TESTLIB_H
#define GODWIT_IMAGE_TESTLIB_H

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* kind: 'f' file (data), 'd' dir, 'l' symlink (data = target), 'h' hard link (data = target),
 * 'c' character device, 'p' FIFO */
struct tent {
	const char *name;
	char kind;
	const char *data;
};

static inline int tl_write_tar(const char *path, const struct tent *e, size_t n, int gzip)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_mtime(ae, 1700000000, 0);
		switch (e[i].kind) {
		case 'd': archive_entry_set_filetype(ae, AE_IFDIR); archive_entry_set_perm(ae, 0755);
			break;
		case 'l': archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data); archive_entry_set_perm(ae, 0777);
			break;
		case 'h': archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data); archive_entry_set_perm(ae, 0644);
			break;
		case 'p': archive_entry_set_filetype(ae, AE_IFIFO); archive_entry_set_perm(ae, 0644);
			break;
		case 'c': archive_entry_set_filetype(ae, AE_IFCHR); archive_entry_set_perm(ae, 0666);
			archive_entry_set_rdev(ae, makedev(1, 3));
			break;
		default: archive_entry_set_filetype(ae, AE_IFREG); archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
		}
		archive_write_header(a, ae);
		if (e[i].kind == 'f')
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	return 0;
}

/* A pax archive libarchive's writer will not make: file "c" (6 bytes), then "d", a hard link
 * to it that carries 10 bytes of data of its own (a reader takes them: they replace c's) */
static inline void tl_ustar_header(unsigned char h[512], const char *name, char type,
				   const char *link, unsigned size)
{
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011o", size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	h[156] = (unsigned char)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

static inline int tl_write_hardlink_with_data(const char *path)
{
	unsigned char blk[512];
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	tl_ustar_header(blk, "c", '0', NULL, 6);
	fwrite(blk, 1, 512, f);
	memset(blk, 0, 512);
	memcpy(blk, "123456", 6);
	fwrite(blk, 1, 512, f);
	/* a pax header first: in pax a hard link may carry data (POSIX.1-2001) */
	tl_ustar_header(blk, "PaxHeaders/d", 'x', NULL, 11);
	fwrite(blk, 1, 512, f);
	memset(blk, 0, 512);
	memcpy(blk, "11 size=10\n", 11);
	fwrite(blk, 1, 512, f);
	tl_ustar_header(blk, "d", '1', "c", 10);
	fwrite(blk, 1, 512, f);
	memset(blk, 0, 512);
	memcpy(blk, "0123456789", 10);
	fwrite(blk, 1, 512, f);
	memset(blk, 0, 512);
	fwrite(blk, 1, 512, f);
	fwrite(blk, 1, 512, f);
	return fclose(f);
}

static inline char *tl_mkdtemp(void)
{
	char tmpl[] = "/tmp/godwit-test.XXXXXX";
	return mkdtemp(tmpl) ? strdup(tmpl) : NULL;
}

static inline int tl_exists(const char *dir, const char *rel)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static inline char *tl_path(const char *dir, const char *rel)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, rel) < 0 ? NULL : p;
}

static inline void tl_write_file(const char *dir, const char *rel, const void *data, size_t len)
{
	char *p = tl_path(dir, rel);
	FILE *f = fopen(p, "wb");
	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
	free(p);
}

static inline void tl_rm_rf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

#endif
