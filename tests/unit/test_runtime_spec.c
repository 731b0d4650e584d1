/* Unit tests for src/image/runtime_spec.c: an OCI bundle's config.json into godwit-runtime's
 * container, what it maps and what it refuses by name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "godwit/runtime_spec.h"

#define PROC "\"process\": {\"args\": [\"sh\", \"-c\", \"exit 3\"], \"env\": [\"A=1\"], " \
	     "\"cwd\": \"/srv\", \"user\": {\"uid\": 1000, \"gid\": 100}, \"rlimits\": [{\"type\": " \
	     "\"RLIMIT_NOFILE\", \"soft\": 1000, \"hard\": 2000}]}"
#define ROOT "\"root\": {\"path\": \"rootfs\"}"

static int parse(const char *json, struct rt_spec *s, struct gw_err *e)
{
	*e = (struct gw_err){ 0 };
	return rt_spec_parse(json, strlen(json), s, e);
}

static void test_maps(void **state)
{
	(void)state;
	struct rt_spec s;
	struct gw_err e;
	const char *j = "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"hostname\": \"web\", "
			"\"linux\": {\"resources\": {\"memory\": {\"limit\": 301989889}, "
			"\"cpu\": {\"quota\": 250000, \"period\": 100000}}}, "
			"\"annotations\": {\"a\": \"b\"}}";
	assert_int_equal(parse(j, &s, &e), 0);
	assert_string_equal(s.args[2], "exit 3");
	assert_null(s.args[3]);
	assert_string_equal(s.env[0], "A=1");
	assert_string_equal(s.cwd, "/srv");
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.gid, 100);
	assert_string_equal(s.root_path, "rootfs");
	assert_string_equal(s.rlimits[0], "RLIMIT_NOFILE=1000:2000");
	assert_null(s.rlimits[1]);
	assert_string_equal(s.hostname, "web");
	assert_int_equal(s.mem_bytes, 288ull << 20); /* rounded down to MiB */
	assert_int_equal(s.cpus, 3);		     /* 2.5 CPUs: 3 vCPUs */
	assert_string_equal(s.annotations, "{\"a\":\"b\"}");
	assert_int_equal(s.nbinds, 0);
	rt_spec_free(&s);

	/* bind mounts come back for the caller to copy in; /dev/shm is the guest's own */
	j = "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"mounts\": ["
	    "{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
	    "{\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": \"/run/h\"},"
	    "{\"destination\": \"/dev/shm\", \"type\": \"bind\", \"source\": \"/var/shm\"},"
	    "{\"destination\": \"/etc/x\", \"source\": \"/run/x\", \"options\": [\"rbind\"]}]}";
	assert_int_equal(parse(j, &s, &e), 0);
	assert_int_equal(s.nbinds, 2);
	assert_string_equal(s.binds[0].src, "/run/h");
	assert_string_equal(s.binds[0].dst, "/etc/hosts");
	assert_string_equal(s.binds[1].dst, "/etc/x");
	assert_null(s.netns);
	rt_spec_free(&s);

	/* podman's network namespace: the VM takes its interface over */
	j = "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"linux\": {\"namespaces\": ["
	    "{\"type\": \"pid\"}, {\"type\": \"network\", \"path\": \"/run/netns/n1\"}]}}";
	assert_int_equal(parse(j, &s, &e), 0);
	assert_string_equal(s.netns, "/run/netns/n1");
	rt_spec_free(&s);

	/* the least a config may say: defaults for the rest */
	assert_int_equal(parse("{\"ociVersion\": \"1.0.0\", \"process\": {\"args\": [\"true\"]}, "
			       ROOT "}", &s, &e), 0);
	assert_string_equal(s.cwd, "/");
	assert_null(s.env[0]);
	assert_null(s.hostname);
	assert_int_equal(s.mem_bytes, RTSPEC_MEM_DEFAULT);
	assert_int_equal(s.cpus, 1);
	assert_string_equal(s.annotations, "{}");
	rt_spec_free(&s);
}

/* each refusal names its field */
static void test_refuses(void **state)
{
	(void)state;
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{ "[1]", "config.json: not one JSON object" },
		{ "{\"ociVersion\": \"1.0.2\"} x", "config.json: not one JSON object" },
		{ "{\"ociVersion\": \"2.0\", " PROC ", " ROOT "}", "ociVersion" },
		{ "{\"ociVersion\": \"1.0.2\", " ROOT "}", "process: missing" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": []}, " ROOT "}",
		  "process.args: missing or empty" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [1]}, " ROOT "}",
		  "process.args[0]: not a string" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"a\"], \"env\": [\"X\"]}, "
		  ROOT "}", "process.env[0]: not KEY=VALUE" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"a\"], \"cwd\": \"x\"}, "
		  ROOT "}", "process.cwd: not an absolute path" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"a\"], \"user\": "
		  "{\"uid\": -1}}, " ROOT "}", "process.user.uid: -1 is not an id" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC "}", "root.path: missing" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"a\"], \"rlimits\": [{\"type\": "
		  "\"RLIMIT_NOFILE\", \"soft\": 3, \"hard\": 2}]}, " ROOT "}",
		  "process.rlimits[0]: want an RLIMIT_ type, and soft <= hard" },
		{ "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"a\"], \"rlimits\": [{\"type\": "
		  "\"NOFILE x\", \"soft\": 1, \"hard\": 2}]}, " ROOT "}", "process.rlimits[0]" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", \"root\": {\"path\": \"r\", \"readonly\": "
		  "true}}", "root.readonly" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"mounts\": [{\"destination\": "
		  "\"/data\", \"type\": \"nfs\", \"source\": \"h:/x\"}]}", "mounts[0] (/data, type "
		  "\"nfs\")" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"mounts\": [{\"destination\": "
		  "\"/data\", \"type\": \"bind\", \"source\": \"srv\"}]}", "mounts[0]: a bind mount "
		  "needs an absolute source" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"hooks\": {\"poststart\": [{}]}}",
		  "hooks: not supported" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"linux\": {\"namespaces\": "
		  "[{\"type\": \"ipc\", \"path\": \"/proc/1/ns/ipc\"}]}}",
		  "linux.namespaces[0]: joining an existing ipc namespace (/proc/1/ns/ipc)" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"linux\": {\"namespaces\": "
		  "[{\"type\": \"network\", \"path\": \"netns/n\"}]}}",
		  "linux.namespaces[0]: joining an existing network namespace (netns/n)" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"linux\": {\"uidMappings\": []}}",
		  "linux.uidMappings" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"linux\": {\"resources\": "
		  "{\"memory\": {\"limit\": 4096}}}}", "memory.limit: 4096 bytes" },
		{ "{\"ociVersion\": \"1.0.2\", " PROC ", " ROOT ", \"annotations\": {\"a\": 1}}",
		  "annotations: values must be strings" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rt_spec s;
		struct gw_err e;
		int r = parse(cases[i].json, &s, &e);
		if (r == 0 || !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: r=%d msg=\"%s\", want \"%s\"", i, r, e.msg, cases[i].msg);
		rt_spec_free(&s);
	}
	/* more than the bound is refused before it is parsed */
	struct rt_spec s;
	struct gw_err e = { 0 };
	assert_int_equal(rt_spec_parse("{}", RTSPEC_JSON_MAX + 1, &s, &e), -EFBIG);
	rt_spec_free(&s);
}

/* update --resources: what it asks of the VM, 0 where it says nothing; bad input refused */
static void test_resources(void **state)
{
	(void)state;
	uint64_t mem;
	int cpus;
	struct gw_err err = { 0 };
	const char *all = "{\"memory\": {\"limit\": 268435457}, \"cpu\": {\"quota\": 250000, "
			  "\"period\": 100000, \"shares\": 2}, \"pids\": {\"limit\": 9}}";
	assert_int_equal(rt_resources_parse(all, strlen(all), &mem, &cpus, &err), 0);
	assert_int_equal(mem, 268435456);	/* whole MiB */
	assert_int_equal(cpus, 3);
	assert_int_equal(rt_resources_parse("{}", 2, &mem, &cpus, &err), 0);
	assert_int_equal(mem, 0);
	assert_int_equal(cpus, 0);
	const char *small = "{\"memory\": {\"limit\": 4096}}";
	assert_int_equal(rt_resources_parse(small, strlen(small), &mem, &cpus, &err), -EINVAL);
	assert_int_equal(rt_resources_parse("{\"memory\":", 11, &mem, &cpus, &err), -EINVAL);
	assert_int_equal(rt_resources_parse("[]", 2, &mem, &cpus, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_resources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
