/* Unit tests for volume mount specs (src/common/mount.c, include/godwit/mount.h) and their
 * place in the container record: what `run -v` accepts, canonical forms, and every spec a
 * config from another host may carry checked on load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "godwit/container.h"
#include "godwit/mount.h"
#include "godwit/util.h"

static void test_parse_good(void **state)
{
	(void)state;
	struct gw_mount m;
	struct gw_err err = { 0 };
	char buf[400];
	assert_int_equal(gw_mount_parse("data:/data", &m, &err), 0);
	assert_string_equal(m.name, "data");
	assert_string_equal(m.target, "/data");
	assert_int_equal(m.ro, 0);
	assert_int_equal(gw_mount_parse("v-1.x_y:/var/lib/app/:ro", &m, &err), 0);
	assert_string_equal(m.target, "/var/lib/app");
	assert_int_equal(m.ro, 1);
	gw_mount_format(&m, buf, sizeof(buf));
	assert_string_equal(buf, "v-1.x_y:/var/lib/app:ro");
	assert_int_equal(gw_mount_parse("d:/a/.b/..c:rw", &m, &err), 0);
	assert_string_equal(m.target, "/a/.b/..c");
	assert_int_equal(m.ro, 0);
}

static void expect_bad(const char *spec, int code, const char *msg)
{
	struct gw_mount m;
	struct gw_err err = { 0 };
	assert_int_equal(gw_mount_parse(spec, &m, &err), -code);
	if (!strstr(err.msg, msg))
		fail_msg("%s: \"%s\" lacks \"%s\"", spec, err.msg, msg);
}

static void test_parse_bad(void **state)
{
	(void)state;
	char longpath[300];
	expect_bad("", EINVAL, "empty volume spec");
	expect_bad("/srv/data:/data", ENOTSUP, "host directories cannot be mounted");
	expect_bad("./d:/data", ENOTSUP, "host directories");
	expect_bad("~/d:/data", ENOTSUP, "host directories");
	expect_bad("data", EINVAL, "want NAME:/path");
	expect_bad("-x:/data", EINVAL, "invalid volume name");
	expect_bad("a b:/data", EINVAL, "invalid volume name");
	expect_bad("d:data", EINVAL, "must be absolute");
	expect_bad("d:/", EINVAL, "must be absolute");
	expect_bad("d:/a/../etc", EINVAL, "must be absolute");
	expect_bad("d:/a/./b", EINVAL, "must be absolute");
	expect_bad("d:/a//b", EINVAL, "must be absolute");
	expect_bad("d:/..", EINVAL, "must be absolute");
	expect_bad("d:/a,b", EINVAL, "must be absolute");
	expect_bad("d:/a:rx", EINVAL, "unknown option \"rx\"");
	expect_bad("d:/a:ro:ro", EINVAL, "unknown option");
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = 'd', longpath[1] = ':', longpath[2] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	expect_bad(longpath, ENAMETOOLONG, "longer than 255");
	/* the agent's own check agrees */
	assert_true(gw_mount_target_ok("/x/y/"));
	assert_false(gw_mount_target_ok("/x/../y"));
	assert_false(gw_mount_target_ok("x"));
}

static void test_list(void **state)
{
	(void)state;
	struct gw_mount m[GW_MOUNTS_MAX];
	struct gw_err err = { 0 };
	int n = -1;
	char *none[] = { NULL };
	char *two[] = { "a:/a", "b:/b:ro", NULL };
	char *dup_name[] = { "a:/a", "a:/b", NULL };
	char *dup_target[] = { "a:/a", "b:/a/", NULL };
	char *five[] = { "a:/a", "b:/b", "c:/c", "d:/d", "e:/e", NULL };
	assert_int_equal(gw_mounts_parse(NULL, m, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gw_mounts_parse(none, m, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gw_mounts_parse(two, m, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(m[1].ro, 1);
	assert_int_equal(gw_mounts_parse(dup_name, m, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "volume a given twice"));
	assert_int_equal(gw_mounts_parse(dup_target, m, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "two volumes on /a"));
	assert_int_equal(gw_mounts_parse(five, m, &n, &err), -E2BIG);
}

static json_object *config_with(json_object *vols)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string("c1"));
	json_object_object_add(o, "image_id", json_object_new_string("sha256:00"));
	json_object_object_add(o, "argv", json_object_new_array());
	json_object_array_add(json_object_object_get(o, "argv"), json_object_new_string("sh"));
	json_object_object_add(o, "mem_bytes", json_object_new_int64(256 << 20));
	json_object_object_add(o, "cpus", json_object_new_int(1));
	if (vols)
		json_object_object_add(o, "volumes", vols);
	return o;
}

/* the free-page-hint device is kept with the config; a config from before it has none */
static void test_config_free_page_hints(void **state)
{
	(void)state;
	struct ct_config c;
	struct gw_err err = { 0 };
	json_object *o = config_with(NULL), *back;
	assert_int_equal(ct_config_from_json(o, &c, &err), 0);
	assert_int_equal(c.free_page_hints, 0);
	c.free_page_hints = 1;
	assert_int_equal(ct_config_to_json(&c, &back), 0);
	ct_config_free(&c);
	assert_int_equal(ct_config_from_json(back, &c, &err), 0);
	assert_int_equal(c.free_page_hints, 1);
	ct_config_free(&c);
	json_object_put(back);
	json_object_put(o);
}

/* a config round-trips its volumes; a bad spec, a non-string or too many are refused */
static void test_config(void **state)
{
	(void)state;
	struct ct_config c;
	struct gw_err err = { 0 };
	json_object *v = json_object_new_array(), *o, *back;
	json_object_array_add(v, json_object_new_string("data:/data:ro"));
	o = config_with(v);
	assert_int_equal(ct_config_from_json(o, &c, &err), 0);
	assert_string_equal(c.volumes[0], "data:/data:ro");
	assert_null(c.volumes[1]);
	assert_int_equal(ct_config_to_json(&c, &back), 0);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
		json_object_object_get(back, "volumes"), 0)), "data:/data:ro");
	json_object_put(back);
	ct_config_free(&c);
	json_object_put(o);

	const char *bad[] = { "/etc:/x", "d:/../etc", "d:/a:exec" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = json_object_new_array();
		json_object_array_add(v, json_object_new_string(bad[i]));
		o = config_with(v);
		assert_true(ct_config_from_json(o, &c, &err) < 0);
		assert_non_null(strstr(err.msg, "config"));
		json_object_put(o);
	}
	v = json_object_new_array();
	json_object_array_add(v, json_object_new_int(1));
	o = config_with(v);
	assert_int_equal(ct_config_from_json(o, &c, &err), -EINVAL);
	json_object_put(o);
	v = json_object_new_array();
	for (int i = 0; i < 5; i++)
		json_object_array_add(v, json_object_new_string("a:/a"));
	o = config_with(v);
	assert_int_equal(ct_config_from_json(o, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at most 4"));
	json_object_put(o);
}

/* a config (a peer's CONFIG, a snapshot's) with a NIC but no network is refused: godwit gives a
 * NIC only on a network of the host's */
static void test_config_nic_needs_network(void **state)
{
	(void)state;
	struct ct_config c;
	struct gw_err err = { 0 };
	json_object *o = config_with(NULL);
	json_object_object_add(o, "nic_mac", json_object_new_string("52:54:00:12:34:56"));
	assert_int_equal(ct_config_from_json(o, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a NIC (\"nic_mac\") without a network"));
	json_object_object_add(o, "network", json_object_new_string("lan"));
	assert_int_equal(ct_config_from_json(o, &c, &err), 0);
	assert_string_equal(c.nic_mac, "52:54:00:12:34:56");
	ct_config_free(&c);
	json_object_put(o);
}

/* run --restart round-trips; an unknown policy or a count out of range is refused */
static void test_config_restart(void **state)
{
	(void)state;
	struct ct_config c;
	struct gw_err err = { 0 };
	json_object *o = config_with(NULL), *back;
	json_object_object_add(o, "restart", json_object_new_string("on-failure"));
	json_object_object_add(o, "restart_max", json_object_new_int(3));
	assert_int_equal(ct_config_from_json(o, &c, &err), 0);
	assert_int_equal(c.restart, CT_RESTART_ON_FAILURE);
	assert_int_equal(c.restart_max, 3);
	assert_int_equal(ct_config_to_json(&c, &back), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(back, "restart")),
			    "on-failure");
	json_object_put(back);
	ct_config_free(&c);
	json_object_object_add(o, "restart_max", json_object_new_int(CT_RESTART_MAX_RETRIES + 1));
	assert_int_equal(ct_config_from_json(o, &c, &err), -EINVAL);
	json_object_object_add(o, "restart_max", json_object_new_int(0));
	json_object_object_add(o, "restart", json_object_new_string("sometimes"));
	assert_int_equal(ct_config_from_json(o, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "always or on-failure"));
	json_object_put(o);
}

/* a network namespace to join (godwit-runtime's) is taken from this host's own record only:
 * a peer's CONFIG or a snapshot naming one is refused */
static void test_config_netns_local_only(void **state)
{
	(void)state;
	struct ct_config c;
	struct gw_err err = { 0 };
	json_object *o = config_with(NULL);
	json_object_object_add(o, "netns", json_object_new_string("/run/netns/x"));
	assert_int_equal(ct_config_from_json(o, &c, &err), -EPERM);
	assert_non_null(strstr(err.msg, "cannot come from elsewhere"));

	char dir[] = "/tmp/godwit-test-netns.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cdir[sizeof(dir) + 32], path[sizeof(dir) + 64];
	snprintf(cdir, sizeof(cdir), "%s/containers", dir);
	assert_int_equal(mkdir(cdir, 0700), 0);
	snprintf(cdir, sizeof(cdir), "%s/containers/web", dir);
	assert_int_equal(mkdir(cdir, 0700), 0);
	snprintf(path, sizeof(path), "%s/config.json", cdir);
	json_object_object_add(o, "name", json_object_new_string("web"));
	assert_int_equal(json_object_to_file(path, o), 0);
	assert_int_equal(ct_config_load(dir, "web", &c, &err), 0);
	assert_string_equal(c.netns, "/run/netns/x");
	ct_config_free(&c);
	json_object_object_add(o, "netns", json_object_new_string("run/netns/x"));
	assert_int_equal(json_object_to_file(path, o), 0);
	assert_int_equal(ct_config_load(dir, "web", &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "absolute"));
	json_object_put(o);
	assert_int_equal(gw_rm_rf(dir, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_free_page_hints),
		cmocka_unit_test(test_config_nic_needs_network),
		cmocka_unit_test(test_config_netns_local_only),
		cmocka_unit_test(test_config_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
