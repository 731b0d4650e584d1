/* Unit tests for src/image/layers.c: whiteouts, opaque directories, path traversal, symlink
 * and hard link escapes, diff_id checks, device nodes and size bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/image.h"
#include "image_testlib.h"

struct fx {
	char *dir;	/* scratch: layers are written here */
	char *rootfs;	/* dir/rootfs: layers are applied here */
	int n;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = tl_mkdtemp();
	f->rootfs = tl_path(f->dir, "rootfs");
	mkdir(f->rootfs, 0755);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tl_rm_rf(f->dir);
	free(f->dir);
	free(f->rootfs);
	free(f);
	return 0;
}

/* Write a layer with these entries and apply it; returns layer_apply's result. */
static int apply(struct fx *f, const struct tent *e, size_t n, int gzip, const char *diff_id,
		 struct layer_stats *st, struct gw_err *err)
{
	char name[32];
	snprintf(name, sizeof(name), "layer%d.tar", f->n++);
	char *p = tl_path(f->dir, name);
	assert_int_equal(tl_write_tar(p, e, n, gzip), 0);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct layer_stats local = { 0 };
	int r = layer_apply(fd, f->rootfs, diff_id, st ? st : &local, err);
	close(fd);
	free(p);
	return r;
}
#define APPLY(f, arr, err) apply(f, arr, sizeof(arr) / sizeof(arr[0]), 0, NULL, NULL, err)

static void test_whiteouts(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l1[] = {
		{ "a", 'f', "a" }, { "d", 'd', NULL }, { "d/x", 'f', "x" }, { "d/sub", 'd', NULL },
		{ "d/sub/y", 'f', "y" }, { "keep", 'd', NULL }, { "keep/z", 'f', "z" },
		{ "keep/gone", 'f', "g" },
	};
	const struct tent l2[] = {
		{ ".wh.a", 'f', "" }, { "d", 'd', NULL }, { "d/.wh..wh..opq", 'f', "" },
		{ "d/new", 'f', "n" }, { "keep/.wh.gone", 'f', "" },
		{ "keep/.wh.never-existed", 'f', "" },
	};
	assert_int_equal(APPLY(f, l1, &e), 0);
	assert_true(tl_exists(f->rootfs, "d/sub/y"));
	assert_int_equal(APPLY(f, l2, &e), 0);
	assert_false(tl_exists(f->rootfs, "a"));
	assert_false(tl_exists(f->rootfs, ".wh.a"));
	assert_false(tl_exists(f->rootfs, "d/x"));
	assert_false(tl_exists(f->rootfs, "d/sub"));
	assert_false(tl_exists(f->rootfs, "d/.wh..wh..opq"));
	assert_true(tl_exists(f->rootfs, "d/new"));
	assert_true(tl_exists(f->rootfs, "keep/z"));
	assert_false(tl_exists(f->rootfs, "keep/gone"));
}

/* The opaque marker hides lower layers only, wherever it sits in the tar. */
static void test_opaque_after_own_entries(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l1[] = { { "d", 'd', NULL }, { "d/old", 'f', "o" } };
	const struct tent l2[] = { { "d/new", 'f', "n" }, { "d/.wh..wh..opq", 'f', "" } };
	assert_int_equal(APPLY(f, l1, &e), 0);
	assert_int_equal(APPLY(f, l2, &e), 0);
	assert_true(tl_exists(f->rootfs, "d/new"));
	assert_false(tl_exists(f->rootfs, "d/old"));
}

static void test_traversal(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l[] = { { "ok", 'f', "1" }, { "a/../../escaped", 'f', "x" } };
	assert_int_equal(APPLY(f, l, &e), -EPERM);
	assert_non_null(strstr(e.msg, "traversal"));
	assert_false(tl_exists(f->dir, "escaped"));
	const struct tent l2[] = { { "../escaped2", 'f', "x" } };
	assert_int_equal(APPLY(f, l2, &e), -EPERM);
	assert_false(tl_exists(f->dir, "escaped2"));
	const struct tent l3[] = { { ".wh...", 'f', "" } };
	assert_int_equal(APPLY(f, l3, &e), -EPERM);
	assert_true(tl_exists(f->dir, "rootfs"));
}

static void test_absolute_paths_stay_inside(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l[] = { { "/abs", 'd', NULL }, { "/abs/file", 'f', "1" },
				  { "./dot/./x", 'f', "2" } };
	assert_int_equal(APPLY(f, l, &e), 0);
	assert_true(tl_exists(f->rootfs, "abs/file"));
	assert_true(tl_exists(f->rootfs, "dot/x"));
}

static void test_symlink_escape(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	char *outside = tl_path(f->dir, "outside");
	mkdir(outside, 0755);
	const struct tent l1[] = { { "link", 'l', outside }, { "rel", 'l', "../outside" } };
	assert_int_equal(APPLY(f, l1, &e), 0); /* symlinks themselves are fine */
	const struct tent l2[] = { { "link/pwned", 'f', "x" } };
	assert_int_equal(APPLY(f, l2, &e), -EPERM);
	assert_non_null(strstr(e.msg, "symlink"));
	const struct tent l3[] = { { "rel/pwned", 'f', "x" } };
	assert_int_equal(APPLY(f, l3, &e), -EPERM);
	/* a whiteout through a symlink must not delete outside either */
	tl_write_file(outside, "victim", "v", 1);
	const struct tent l4[] = { { "link/.wh.victim", 'f', "" } };
	assert_int_equal(APPLY(f, l4, &e), -EPERM);
	const struct tent l5[] = { { "link/.wh..wh..opq", 'f', "" } };
	assert_int_equal(APPLY(f, l5, &e), -EPERM);
	assert_true(tl_exists(outside, "victim"));
	assert_false(tl_exists(outside, "pwned"));
	/* replacing the symlink itself with a file does not follow it */
	const struct tent l6[] = { { "link", 'f', "now a file" } };
	assert_int_equal(APPLY(f, l6, &e), 0);
	struct stat st;
	char *p = tl_path(f->rootfs, "link");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	free(p);
	free(outside);
}

static void test_hardlinks(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l1[] = { { "bin", 'd', NULL }, { "bin/busybox", 'f', "bb" },
				   { "bin/sh", 'h', "bin/busybox" }, { "lnk", 'l', "/etc" } };
	assert_int_equal(APPLY(f, l1, &e), 0);
	struct stat a, b;
	char *pa = tl_path(f->rootfs, "bin/busybox"), *pb = tl_path(f->rootfs, "bin/sh");
	assert_int_equal(stat(pa, &a), 0);
	assert_int_equal(stat(pb, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	free(pa);
	free(pb);
	const struct tent l2[] = { { "x", 'h', "../../etc/passwd" } };
	assert_int_equal(APPLY(f, l2, &e), -EPERM);
	const struct tent l3[] = { { "y", 'h', "lnk/passwd" } };
	assert_int_equal(APPLY(f, l3, &e), -EPERM);
	assert_non_null(strstr(e.msg, "symlink"));
	const struct tent l4[] = { { "z", 'h', "bin" } };
	assert_int_equal(APPLY(f, l4, &e), -EPERM);
	const struct tent l5[] = { { "w", 'h', "missing" } };
	assert_int_equal(APPLY(f, l5, &e), -EPERM);
	assert_false(tl_exists(f->rootfs, "y"));
}

static void test_diff_id(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	const struct tent l[] = { { "hello", 'f', "world" } };
	char *p = tl_path(f->dir, "plain.tar");
	char hex[65], id[72];
	tl_write_tar(p, l, 1, 0);
	int fd = open(p, O_RDONLY);
	assert_int_equal(oci_sha256_fd(fd, NULL, hex, &e), 0);
	close(fd);
	free(p);
	snprintf(id, sizeof(id), "sha256:%s", hex);
	/* the same content gzip'd has the same diff_id (the uncompressed digest) */
	assert_int_equal(apply(f, l, 1, 1, id, NULL, &e), 0);
	assert_true(tl_exists(f->rootfs, "hello"));
	id[10] = id[10] == '0' ? '1' : '0';
	assert_int_equal(apply(f, l, 1, 1, id, NULL, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "diff_id"));
}

static void test_devices_skipped(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	struct layer_stats st = { 0 };
	const struct tent l[] = { { "dev", 'd', NULL }, { "dev/null", 'c', NULL },
				  { "dev/ok", 'f', "1" } };
	assert_int_equal(apply(f, l, 3, 0, NULL, &st, &e), 0);
	assert_int_equal(st.skipped, 1);
	assert_false(tl_exists(f->rootfs, "dev/null"));
	assert_true(tl_exists(f->rootfs, "dev/ok"));
}

static void test_size_bound(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	struct layer_stats st = { .max_bytes = 10 };
	const struct tent l[] = { { "a", 'f', "123456" }, { "b", 'f', "123456" } };
	assert_int_equal(apply(f, l, 2, 0, NULL, &st, &e), -EFBIG);
	assert_false(tl_exists(f->rootfs, "b"));
	struct layer_stats st2 = { .max_bytes = 12 };
	assert_int_equal(apply(f, l, 2, 0, NULL, &st2, &e), 0);
	assert_int_equal(st2.bytes, 12);
	/* a hard link that carries data counts like a file: 6 + 10 > 12 */
	char *p = tl_path(f->dir, "hl.tar");
	assert_int_equal(tl_write_hardlink_with_data(p), 0);
	for (uint64_t max = 12; max <= 16; max += 4) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		struct layer_stats st3 = { .max_bytes = max };
		int r = layer_apply(fd, f->rootfs, NULL, &st3, &e);
		if (r != (max == 12 ? -EFBIG : 0))
			fail_msg("max %d: %d %s", (int)max, r, e.msg);
		if (max == 16)
			assert_int_equal(st3.bytes, 16);
		close(fd);
	}
	free(p);
}

static void test_truncated(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	char big[20000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const struct tent l[] = { { "big", 'f', big } };
	char *p = tl_path(f->dir, "t.tar");
	tl_write_tar(p, l, 1, 0);
	assert_int_equal(truncate(p, 8192), 0);
	int fd = open(p, O_RDONLY);
	struct layer_stats st = { 0 };
	assert_true(layer_apply(fd, f->rootfs, NULL, &st, &e) < 0);
	assert_non_null(strstr(e.msg, "runcated"));
	close(fd);
	fd = open("/etc/hostname", O_RDONLY); /* not a tar at all */
	assert_true(layer_apply(fd, f->rootfs, NULL, &st, &e) < 0);
	close(fd);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
		T(test_whiteouts),	   T(test_opaque_after_own_entries),
		T(test_traversal),	   T(test_absolute_paths_stay_inside),
		T(test_symlink_escape),	   T(test_hardlinks),
		T(test_diff_id),	   T(test_devices_skipped),
		T(test_size_bound),	   T(test_truncated),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
