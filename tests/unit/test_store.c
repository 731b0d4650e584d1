/* Unit tests for the image store and loader (src/image/store.c, load.c, basedisk.c): load a
 * docker-archive directory, resolve by tag/id/prefix, list, untag/remove, refuse removal while
 * a container uses the image, nothing half-written after a failed load; and, when
 * tests/lib/mkimages.sh can run, load every test image (good ones load, bad ones are refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/image.h"
#include "godwit/util.h"
#include "image_testlib.h"

struct fx {
	char *dir, *root, *arch;	/* scratch, state root, docker-archive dir */
	char id[72];
};

static char *read_all(const char *path, size_t *len)
{
	char *buf = NULL;
	struct gw_err e;
	int r = gw_read_file(path, 1 << 24, &buf, len, &e);
	assert_int_equal(r, 0);
	return buf;
}

/* A docker-archive directory: one layer, config named by its digest, tags as given. */
static void make_archive(struct fx *f, const char *tags_json, const char *layer_file,
			 int bad_diff_id)
{
	struct gw_err e;
	char hex[65], cfg[1024], man[1024], cfgname[80];
	const struct tent l[] = { { "etc", 'd', NULL }, { "etc/hostname", 'f', layer_file },
				  { "bin", 'd', NULL }, { "bin/sh", 'f', "#!sh" } };
	mkdir(f->arch, 0755);
	char *ld = tl_path(f->arch, "l1");
	mkdir(ld, 0755);
	char *lp = tl_path(f->arch, "l1/layer.tar");
	tl_write_tar(lp, l, 4, 0);
	size_t len;
	char *layer = read_all(lp, &len);
	oci_sha256_buf(layer, len, hex, &e);
	if (bad_diff_id)
		hex[0] = hex[0] == 'a' ? 'b' : 'a';
	snprintf(cfg, sizeof(cfg), "{\"config\":{\"Cmd\":[\"sh\"],\"Env\":[\"A=1\"],\"WorkingDir\":"
		 "\"/w\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}", hex);
	oci_sha256_buf(cfg, strlen(cfg), hex, &e);
	snprintf(cfgname, sizeof(cfgname), "%s.json", hex);
	snprintf(f->id, sizeof(f->id), "sha256:%s", hex);
	tl_write_file(f->arch, cfgname, cfg, strlen(cfg));
	snprintf(man, sizeof(man), "[{\"Config\":\"%s\",\"RepoTags\":%s,\"Layers\":"
		 "[\"l1/layer.tar\"]}]", cfgname, tags_json);
	tl_write_file(f->arch, "manifest.json", man, strlen(man));
	free(layer);
	free(lp);
	free(ld);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = tl_mkdtemp();
	f->root = tl_path(f->dir, "root");
	f->arch = tl_path(f->dir, "arch");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tl_rm_rf(f->dir);
	free(f->dir);
	free(f->root);
	free(f->arch);
	free(f);
	return 0;
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void test_load_resolve_remove(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	struct gw_image_loaded *res;
	size_t n;
	make_archive(f, "[\"t:1\",\"docker.io/library/other:2\"]", "h1", 0);
	assert_int_equal(gw_image_load(f->root, f->arch, &res, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(res[0].id, f->id);
	assert_string_equal(res[0].tags[0], "t:1");
	assert_string_equal(res[0].tags[1], "other:2");
	assert_false(res[0].existed);
	gw_image_loaded_free(res, n);

	struct gw_image img;
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.10s", f->id + 7);
	const char *refs[] = { "t:1", "other:2", "docker.io/library/other:2", f->id, f->id + 7,
			       prefix };
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		assert_int_equal(gw_image_resolve(f->root, refs[i], &img, &e), 0);
		assert_string_equal(img.id, f->id);
		assert_string_equal(img.cmd[0], "sh");
		assert_null(img.entrypoint);
		assert_string_equal(img.env[0], "A=1");
		assert_string_equal(img.workdir, "/w");
		assert_true(img.size > 0);
		struct stat st;
		assert_int_equal(stat(img.base_disk, &st), 0);
		assert_true(st.st_size >= 256 << 20);
		assert_int_equal(st.st_mode & 0222, 0); /* read-only */
		gw_image_free(&img);
	}
	assert_int_equal(gw_image_resolve(f->root, "t", &img, &e), -ENOENT);
	assert_string_equal(e.msg, "unknown image: t");
	assert_int_equal(gw_image_resolve(f->root, "abc", &img, &e), -ENOENT);

	/* loading again: nothing rebuilt */
	assert_int_equal(gw_image_load(f->root, f->arch, &res, &n, &e), 0);
	assert_true(res[0].existed);
	gw_image_loaded_free(res, n);

	struct gw_image_info *l;
	assert_int_equal(gw_image_list(f->root, &l, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].repo, "other");
	assert_string_equal(l[1].tag, "1");
	gw_image_info_free(l, n);

	/* a container uses it: removal refused, tags intact */
	char *cdir = tl_path(f->root, "containers/web");
	assert_int_equal(gw_mkdir_p(cdir, 0755, &e), 0);
	char cfg[200];
	snprintf(cfg, sizeof(cfg), "{\"name\":\"web\",\"image_id\":\"%s\"}", f->id);
	tl_write_file(cdir, "config.json", cfg, strlen(cfg));
	assert_int_equal(gw_image_remove(f->root, "t:1", NULL, NULL, &e), 0); /* untag only */
	assert_int_equal(gw_image_remove(f->root, "other:2", NULL, NULL, &e), -EBUSY);
	assert_non_null(strstr(e.msg, "web"));
	assert_int_equal(gw_image_resolve(f->root, "other:2", &img, &e), 0);
	gw_image_free(&img);
	assert_int_equal(gw_image_resolve(f->root, "t:1", &img, &e), -ENOENT);

	tl_rm_rf(cdir);
	free(cdir);
	assert_int_equal(gw_image_remove(f->root, prefix, NULL, NULL, &e), 0);
	assert_int_equal(gw_image_resolve(f->root, f->id, &img, &e), -ENOENT);
	assert_int_equal(gw_image_resolve(f->root, "other:2", &img, &e), -ENOENT);
	assert_int_equal(gw_image_list(f->root, &l, &n, &e), 0);
	assert_int_equal(n, 0);
	gw_image_info_free(l, n);
	char *tmp = tl_path(f->root, "images/tmp");
	assert_int_equal(count_entries(tmp), 0);
	free(tmp);
}

static void test_failed_load_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	struct gw_image_loaded *res;
	size_t n;
	make_archive(f, "[\"bad:1\"]", "h2", 1);
	assert_int_equal(gw_image_load(f->root, f->arch, &res, &n, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "diff_id"));
	char *images = tl_path(f->root, "images"), *tmp = tl_path(f->root, "images/tmp");
	assert_int_equal(count_entries(tmp), 0);
	assert_int_equal(count_entries(images), 1); /* tmp/ only: no image, no tag map */
	struct gw_image img;
	assert_int_equal(gw_image_resolve(f->root, "bad:1", &img, &e), -ENOENT);

	/* a config whose file name is not its digest */
	tl_rm_rf(f->arch);
	make_archive(f, "[\"bad:2\"]", "h3", 0);
	char *from = tl_path(f->arch, f->id + 7), *old = NULL, *to = tl_path(f->arch, "c.json");
	assert_true(asprintf(&old, "%s.json", from) > 0);
	assert_int_equal(rename(old, to), 0);
	const char *fixed = "[{\"Config\":\"c.json\",\"RepoTags\":[\"bad:2\"],"
			    "\"Layers\":[\"l1/layer.tar\"]}]";
	tl_write_file(f->arch, "manifest.json", fixed, strlen(fixed));
	assert_int_equal(gw_image_load(f->root, f->arch, &res, &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not named by its sha256"));
	assert_int_equal(count_entries(tmp), 0);
	free(from), free(old), free(to), free(images), free(tmp);
}

/* A FIFO where the archive's JSON should be: refused at once, never waited on */
static void test_fifo_refused(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	struct gw_image_loaded *res;
	size_t n;
	assert_int_equal(mkdir(f->arch, 0700), 0);
	char *m = tl_path(f->arch, "manifest.json");
	assert_int_equal(mkfifo(m, 0600), 0);
	alarm(20); /* a hang fails the test instead of stalling the suite */
	assert_int_equal(gw_image_load(f->root, f->arch, &res, &n, &e), -EINVAL);
	alarm(0);
	assert_non_null(strstr(e.msg, "not a regular file"));
	free(m);
}

/* Every image tests/lib/mkimages.sh builds: good ones load, bad ones fail cleanly. */
static void test_mkimages(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	if (access("tests/lib/mkimages.sh", X_OK) < 0) {
		skip();
		return;
	}
	char cmd[512], *out = tl_path(f->dir, "imgs");
	snprintf(cmd, sizeof(cmd), "tests/lib/mkimages.sh %s >/dev/null 2>&1", out);
	if (system(cmd) != 0) {
		free(out);
		fail_msg("%s failed: it needs busybox-static and python3 (scripts/deps.sh)", cmd);
		return;
	}
	const char *good[][2] = { { "busybox-docker.tar", "busybox:latest" },
				  { "gwtest-oci", "gwtest:latest" },
				  { "gwtest-oci.tar", "gwtest:latest" } };
	for (size_t i = 0; i < 3; i++) {
		struct gw_image_loaded *res;
		size_t n;
		char *p = tl_path(out, good[i][0]);
		e.msg[0] = '\0';
		int r = gw_image_load(f->root, p, &res, &n, &e);
		if (r < 0)
			fprintf(stderr, "%s: %s\n", p, e.msg);
		assert_int_equal(r, 0);
		assert_string_equal(res[0].tags[0], good[i][1]);
		assert_int_equal(res[0].existed, i == 2);
		gw_image_loaded_free(res, n);
		free(p);
	}
	struct gw_image img;
	assert_int_equal(gw_image_resolve(f->root, "gwtest", &img, &e), 0);
	assert_string_equal(img.entrypoint[0], "/bin/gwtest");
	assert_string_equal(img.workdir, "/srv");
	assert_string_equal(img.env[0], "GWTEST=1");
	gw_image_free(&img);
	const char *bad[][2] = { { "bad-truncated.tar", "runcated" },
				 { "bad-digest.tar", "digest mismatch" },
				 { "bad-traversal.tar", "traversal" },
				 { "bad-symlink.tar", "symlink" },
				 { "bad-hardlink.tar", "hard link" } };
	for (size_t i = 0; i < 5; i++) {
		struct gw_image_loaded *res;
		size_t n;
		char *p = tl_path(out, bad[i][0]);
		assert_true(gw_image_load(f->root, p, &res, &n, &e) < 0);
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("%s: unexpected error: %s", bad[i][0], e.msg);
		free(p);
	}
	struct gw_image_info *l;
	size_t n;
	assert_int_equal(gw_image_list(f->root, &l, &n, &e), 0);
	assert_int_equal(n, 2);
	gw_image_info_free(l, n);
	assert_int_equal(access("/tmp/godwit-escaped", F_OK), -1);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_resolve_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_load_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkimages, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
