/* Unit tests for src/image/oci.c: docker-archive and OCI manifest/index/config parsing,
 * bounds, digests and image references. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "godwit/image.h"
#include "image_testlib.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int parse_dm(const char *s, struct oci_docker_manifest *m, struct gw_err *e)
{
	return oci_parse_docker_manifest(s, strlen(s), m, e);
}

static void test_docker_manifest(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_docker_manifest m;
	const char *s = "[{\"Config\":\"abc.json\",\"RepoTags\":[\"busybox:latest\",\"bb:1\"],"
			"\"Layers\":[\"l1/layer.tar\",\"./l2/layer.tar\"]}]";
	assert_int_equal(parse_dm(s, &m, &e), 0);
	assert_int_equal(m.n_images, 1);
	assert_string_equal(m.images[0].config, "abc.json");
	assert_string_equal(m.images[0].repo_tags[1], "bb:1");
	assert_null(m.images[0].repo_tags[2]);
	assert_int_equal(m.images[0].n_layers, 2);
	assert_string_equal(m.images[0].layers[1], "./l2/layer.tar");
	oci_docker_manifest_free(&m);

	/* untagged: RepoTags null */
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"RepoTags\":null,\"Layers\":[]}]", &m, &e), 0);
	assert_null(m.images[0].repo_tags);
	oci_docker_manifest_free(&m);
}

static void test_docker_manifest_bad(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_docker_manifest m;
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"Layers\":[\"../x/layer.tar\"]}]", &m, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "leaves the archive"));
	assert_int_equal(parse_dm("[{\"Config\":\"/etc/passwd\",\"Layers\":[]}]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[{\"Config\":\"a/../../b\",\"Layers\":[]}]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("{}", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[{\"Layers\":[]}]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[{\"Config\":\"c\"}]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"Layers\":[1]}]", &m, &e), -EINVAL);
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"Layers\":[\"a\\u0000b\"]}]", &m, &e),
			 -EINVAL);
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"Layers\":[\"x\"]", &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "truncated"));
	assert_int_equal(parse_dm("[{\"Config\":\"c\",\"Layers\":[]}] junk", &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "trailing"));
	assert_int_equal(m.n_images, 0);
}

static void test_index(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_index x;
	const char *s = "{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
		"\"size\":10,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\","
		"\"io.containerd.image.name\":\"docker.io/library/x:1\"},"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
		"\"size\":11,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}";
	assert_int_equal(oci_parse_index(s, strlen(s), &x, &e), 0);
	assert_int_equal(x.n_manifests, 2);
	assert_string_equal(x.manifests[0].digest, D1);
	assert_int_equal(x.manifests[0].size, 10);
	assert_string_equal(x.manifests[0].ref_name, "docker.io/library/x:1");
	assert_false(x.manifests[0].foreign_platform);
	assert_true(x.manifests[1].foreign_platform);
	assert_null(x.manifests[1].ref_name);
	oci_index_free(&x);
}

static void test_index_bad(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_index x;
	const char *bad[] = {
		"{\"schemaVersion\":1,\"manifests\":[]}",
		"{\"manifests\":[]}",
		"{\"schemaVersion\":2}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha512:00\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:ABCD\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":-1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\"}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"size\":3}]}",
		"[1,2,3]",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		assert_int_equal(oci_parse_index(bad[i], strlen(bad[i]), &x, &e), -EINVAL);
		assert_true(strlen(e.msg) > 0);
	}
	/* uppercase hex is not a valid digest */
	assert_false(oci_valid_digest("sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
				      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_false(oci_valid_digest(D1 "0"));
	assert_false(oci_valid_digest("sha256:11"));
	assert_true(oci_valid_digest(D1));
}

static char *manifest_with_layers(size_t n, const char *mt)
{
	size_t cap = 512 + n * 200;
	char *s = malloc(cap);
	size_t o = (size_t)snprintf(s, cap, "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
				    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\""
				    D1 "\",\"size\":5},\"layers\":[");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(s + o, cap - o, "%s{\"mediaType\":\"%s\",\"digest\":\"" D2
				      "\",\"size\":%zu}", i ? "," : "", mt, i);
	snprintf(s + o, cap - o, "]}");
	return s;
}

static void test_manifest(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_manifest m;
	char *s = manifest_with_layers(2, "application/vnd.oci.image.layer.v1.tar+gzip");
	assert_int_equal(oci_parse_manifest(s, strlen(s), &m, &e), 0);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.config.size, 5);
	assert_int_equal(m.n_layers, 2);
	assert_int_equal(m.layers[1].size, 1);
	oci_manifest_free(&m);
	free(s);

	s = manifest_with_layers(1, "application/vnd.oci.image.layer.nondistributable.v1.tar");
	assert_int_equal(oci_parse_manifest(s, strlen(s), &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "unsupported media type"));
	free(s);

	s = manifest_with_layers(OCI_LAYERS_MAX + 1, "application/vnd.oci.image.layer.v1.tar");
	assert_int_equal(oci_parse_manifest(s, strlen(s), &m, &e), -E2BIG);
	free(s);
	s = manifest_with_layers(OCI_LAYERS_MAX, "application/vnd.oci.image.layer.v1.tar");
	assert_int_equal(oci_parse_manifest(s, strlen(s), &m, &e), 0);
	oci_manifest_free(&m);
	free(s);
}

static void test_config(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_config c;
	const char *s = "{\"architecture\":\"amd64\",\"config\":{\"Entrypoint\":[\"/bin/gwtest\"],"
			"\"Cmd\":[\"env\",\"x\"],\"Env\":[\"A=1\",\"PATH=/bin\"],\"WorkingDir\":\"/srv\","
			"\"User\":\"1000:1000\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\""
			D1 "\",\"" D3 "\"]}}";
	assert_int_equal(oci_parse_config(s, strlen(s), &c, &e), 0);
	assert_string_equal(c.entrypoint[0], "/bin/gwtest");
	assert_null(c.entrypoint[1]);
	assert_string_equal(c.cmd[1], "x");
	assert_string_equal(c.env[1], "PATH=/bin");
	assert_string_equal(c.workdir, "/srv");
	assert_string_equal(c.user, "1000:1000");
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1], D3);
	oci_config_free(&c);

	s = "{\"config\":{\"Cmd\":null},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	assert_int_equal(oci_parse_config(s, strlen(s), &c, &e), 0);
	assert_null(c.cmd);
	assert_null(c.entrypoint);
	assert_null(c.workdir);
	oci_config_free(&c);

	const char *bad[] = {
		"{\"config\":{}}",
		"{\"rootfs\":{\"type\":\"zfs\",\"diff_ids\":[]}}",
		"{\"rootfs\":{\"type\":null,\"diff_ids\":[]}}", /* found by fuzz_manifest */
		"{\"rootfs\":{\"type\":[\"layers\"],\"diff_ids\":[]}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"md5:abc\"]}}",
		"{\"config\":{\"Env\":[\"NOEQUALS\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		"{\"config\":{\"Cmd\":\"sh\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		"{\"config\":{\"WorkingDir\":5},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		"{\"config\":{\"User\":\"a\\u0000b\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		assert_int_equal(oci_parse_config(bad[i], strlen(bad[i]), &c, &e), -EINVAL);
		assert_true(strlen(e.msg) > 0);
		assert_null(c.env);
	}
}

static void test_json_bound(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	struct oci_config c;
	size_t n = OCI_JSON_MAX + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(oci_parse_config(big, n, &c, &e), -EFBIG);
	assert_non_null(strstr(e.msg, "larger than"));
	free(big);
}

static void test_sha256(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	char hex[65];
	const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	assert_int_equal(oci_sha256_buf("abc", 3, hex, &e), 0);
	assert_string_equal(hex, abc);
	char *dir = tl_mkdtemp();
	tl_write_file(dir, "f", "abc", 3);
	char *p = tl_path(dir, "f");
	int fd = open(p, O_RDONLY);
	uint64_t size = 0;
	assert_int_equal(oci_sha256_fd(fd, &size, hex, &e), 0);
	assert_string_equal(hex, abc);
	assert_int_equal(size, 3);
	close(fd);
	free(p);
	tl_rm_rf(dir);
	free(dir);
}

static void test_refs(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	const char *ok[][2] = {
		{ "busybox", "busybox:latest" },
		{ "busybox:1.36", "busybox:1.36" },
		{ "docker.io/library/busybox:1.36", "busybox:1.36" },
		{ "docker.io/me/app", "me/app:latest" },
		{ "localhost:5000/x/y:t", "localhost:5000/x/y:t" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *out = NULL;
		assert_int_equal(oci_normalize_ref(ok[i][0], &out, &e), 0);
		assert_string_equal(out, ok[i][1]);
		free(out);
	}
	const char *bad[] = { "", "a b", "x:", ":t", "../x", "x/../y", "x@sha256:00", "x:t/u",
			      "-x", "x:ta g" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL;
		assert_int_equal(oci_normalize_ref(bad[i], &out, &e), -EINVAL);
		assert_null(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_manifest), cmocka_unit_test(test_docker_manifest_bad),
		cmocka_unit_test(test_index),		cmocka_unit_test(test_index_bad),
		cmocka_unit_test(test_manifest),	cmocka_unit_test(test_config),
		cmocka_unit_test(test_json_bound),	cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_refs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
