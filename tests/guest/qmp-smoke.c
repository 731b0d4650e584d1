/* Smoke check of the QEMU driver against the real QEMU (run by tests/guest/qmp-smoke.sh):
 * start a VM from hv_build_argv() paused, talk QMP (query-version, query-status, cont), wait
 * for the guest's first console line, then live-migrate it to a second QEMU started with
 * -incoming defer from the same config and check it runs there. Not a unit test: needs QEMU,
 * a kernel and an initrd whose /init prints "GODWIT-INIT" and then "tick N" lines. */
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include "godwit/hv.h"
#include "godwit/qmp.h"
#include "godwit/util.h"

extern char **environ;

static double secs(int64_t ns)
{
	return (double)ns / 1e9;
}

static int fail(const char *what, struct gw_err *err)
{
	fprintf(stderr, "qmp-smoke: %s: %s\n", what, err ? err->msg : "");
	return 1;
}

static pid_t start_vm(struct hv_vm_config *c, struct gw_err *err)
{
	char **argv;
	if (hv_build_argv(c, &argv, err) < 0)
		return -1;
	for (char **p = argv; *p; p++)
		fprintf(stderr, "%s%s", *p, p[1] ? " " : "\n");
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	hv_argv_free(argv);
	if (rc)
		return gw_err_sys(err, rc, "spawn qemu"), -1;
	return pid;
}

/* Wait until the console file contains needle; returns ns waited or -1. */
static int64_t wait_console(const char *path, const char *needle, int timeout_ms)
{
	int64_t t0 = gw_now_mono_ns();
	while (gw_now_mono_ns() - t0 < (int64_t)timeout_ms * 1000000) {
		char *buf = NULL;
		if (gw_read_file(path, 1 << 20, &buf, NULL, NULL) == 0 && strstr(buf, needle)) {
			free(buf);
			return gw_now_mono_ns() - t0;
		}
		free(buf);
		usleep(10000);
	}
	return -1;
}

static const char *status_of(struct qmp *q, struct gw_err *err)
{
	static char st[64];
	json_object *ret = NULL, *s;
	if (qmp_execute(q, "query-status", NULL, &ret, 5000, err) < 0)
		return "?";
	snprintf(st, sizeof(st), "%s",
		 json_object_object_get_ex(ret, "status", &s) ? json_object_get_string(s) : "?");
	json_object_put(ret);
	return st;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: qmp-smoke KERNEL INITRD WORKDIR [DISK.qcow2]\n");
		return 2;
	}
	const char *dir = argv[3];
	struct gw_err err = { 0 };
	char qmp_a[256], qmp_b[256], con_a[256], con_b[256], ag_a[256], ag_b[256], mig[256];
	snprintf(qmp_a, sizeof(qmp_a), "%s/a.qmp", dir);
	snprintf(qmp_b, sizeof(qmp_b), "%s/b.qmp", dir);
	snprintf(con_a, sizeof(con_a), "%s/a.console", dir);
	snprintf(con_b, sizeof(con_b), "%s/b.console", dir);
	snprintf(ag_a, sizeof(ag_a), "%s/a.agent", dir);
	snprintf(ag_b, sizeof(ag_b), "%s/b.agent", dir);
	snprintf(mig, sizeof(mig), "%s/mig.sock", dir);
	struct hv_vm_config c = {
		.name = "smoke", .kernel = argv[1], .initrd = argv[2],
		.mem_bytes = 512ULL << 20, .cpus = 1, .accel = HV_ACCEL_TCG,
		.disk_path = argc > 4 ? argv[4] : NULL, .qmp_path = qmp_a, .agent_path = ag_a,
		.console_path = con_a, .nic_mac = "52:54:00:12:34:56", .paused = 1,
	};
	char ver[64];
	if (hv_qemu_version(ver, sizeof(ver)) < 0)
		return fail("qemu --version", NULL);
	printf("qemu version (--version): %s\n", ver);

	int64_t t0 = gw_now_mono_ns();
	pid_t a = start_vm(&c, &err);
	if (a < 0)
		return fail("start source", &err);
	struct qmp *qa = NULL, *qb = NULL;
	int ret = 1;
	pid_t b = -1;
	if (qmp_connect(qmp_a, 10000, &qa, &err) < 0) {
		fail("connect source", &err);
		goto out;
	}
	printf("qmp connected after %.3f s\n", secs(gw_now_mono_ns() - t0));
	json_object *v = NULL;
	if (qmp_execute(qa, "query-version", NULL, &v, 5000, &err) < 0) {
		fail("query-version", &err);
		goto out;
	}
	printf("query-version: %s\n", json_object_to_json_string(v));
	json_object_put(v);
	printf("status before cont: %s\n", status_of(qa, &err));
	json_object *schema = NULL;
	if (qmp_execute(qa, "query-qmp-schema", NULL, &schema, 5000, &err) < 0) {
		fail("query-qmp-schema (a large reply)", &err);
		goto out;
	}
	printf("query-qmp-schema: %zu entries\n", json_object_array_length(schema));
	json_object_put(schema);
	int64_t tc = gw_now_mono_ns();
	if (qmp_execute(qa, "cont", NULL, NULL, 5000, &err) < 0) {
		fail("cont", &err);
		goto out;
	}
	int64_t boot = wait_console(con_a, "GODWIT-INIT", 60000);
	if (boot < 0) {
		fail("guest did not print GODWIT-INIT within 60 s", NULL);
		goto out;
	}
	printf("boot: first /init line %.3f s after cont (%.3f s after spawn)\n",
	       secs(gw_now_mono_ns() - tc), secs(gw_now_mono_ns() - t0));
	printf("status after boot: %s\n", status_of(qa, &err));

	/* Live migration to a second QEMU with the same device configuration. */
	c.qmp_path = qmp_b;
	c.console_path = con_b;
	c.agent_path = ag_b;
	c.incoming = 1;
	b = start_vm(&c, &err);
	if (b < 0 || qmp_connect(qmp_b, 10000, &qb, &err) < 0) {
		fail("start destination", &err);
		goto out;
	}
	/* MIGRATION events are sent only with the "events" capability. */
	json_object *caps = json_tokener_parse(
		"{\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}");
	int crc = qmp_execute(qa, "migrate-set-capabilities", caps, NULL, 5000, &err);
	json_object_put(caps);
	if (crc < 0) {
		fail("migrate-set-capabilities", &err);
		goto out;
	}
	json_object *args = json_object_new_object();
	char uri[300];
	snprintf(uri, sizeof(uri), "unix:%s", mig);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	int rc = qmp_execute(qb, "migrate-incoming", args, NULL, 5000, &err);
	if (rc == 0)
		rc = qmp_execute(qa, "migrate", args, NULL, 5000, &err);
	json_object_put(args);
	if (rc < 0) {
		fail("migrate", &err);
		goto out;
	}
	int64_t tm = gw_now_mono_ns();
	json_object *ev = NULL, *data, *st;
	for (;;) {
		if (qmp_wait_event(qa, "MIGRATION", 30000, &ev, &err) < 0) {
			fail("waiting for MIGRATION completed", &err);
			goto out;
		}
		const char *s = json_object_object_get_ex(ev, "data", &data) &&
						json_object_object_get_ex(data, "status", &st)
					? json_object_get_string(st)
					: "?";
		int done = !strcmp(s, "completed"), bad = !strcmp(s, "failed");
		json_object_put(ev);
		if (bad) {
			fail("migration failed", NULL);
			goto out;
		}
		if (done)
			break;
	}
	printf("migration completed in %.3f s; ", secs(gw_now_mono_ns() - tm));
	printf("source %s, ", status_of(qa, &err));
	printf("destination %s\n", status_of(qb, &err));
	if (qmp_execute(qb, "cont", NULL, NULL, 5000, &err) < 0) {
		fail("cont on destination", &err);
		goto out;
	}
	if (wait_console(con_b, "tick", 10000) < 0) {
		fail("guest does not tick on the destination", NULL);
		goto out;
	}
	printf("destination runs: %s\n", status_of(qb, &err));
	printf("events dropped: %lu\n", qmp_events_dropped(qa));
	ret = 0;
out:
	if (qa)
		qmp_execute(qa, "quit", NULL, NULL, 2000, &err);
	if (qb)
		qmp_execute(qb, "quit", NULL, NULL, 2000, &err);
	qmp_close(qa);
	qmp_close(qb);
	usleep(200000);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	if (b > 0) {
		kill(b, SIGKILL);
		waitpid(b, NULL, 0);
	}
	printf("qmp-smoke: %s\n", ret ? "FAILED" : "ok");
	return ret;
}
