/* Unit tests for the typed QMP calls (src/hv/vm*.c, include/godwit/hv_vm.h): a fake QEMU
 * monitor in a thread on the other end of a socketpair answers each command from a script and
 * keeps every line it received, so a test checks the exact bytes a typed call puts on the wire
 * (what the migration engine sent before it had them) and how each reply is read. QEMU is
 * untrusted: the query-migrate parser also gets missing members, wrong types, negative and
 * oversized values. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "fake_monitor.h"
#include "godwit/hv_vm.h"
#include "godwit/util.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}," \
		 " \"package\": \"\"}, \"capabilities\": []}}\n"
#define STEPS_MAX 16
#define OK "\"return\": {}"

/* What the fake does for one command: lines before its reply (events), the reply's body, and
 * lines after it, after_ms later. */
struct step {
	const char *before;
	const char *reply;
	const char *after;
	int after_ms;
};

struct fake {
	int fd;				/* the fake's end */
	pthread_t th;
	const struct step *steps;	/* NULL: every command gets OK */
	size_t nsteps;
	char lines[STEPS_MAX][2048];	/* the commands after the handshake, as received */
	int passed_fd[STEPS_MAX];	/* the fd that came with each, or -1 */
	int n;
};

static void srv_send(struct fake *f, const char *s)
{
	if (s)
		gw_write_full(f->fd, s, strlen(s));
}

/* One line (without its newline) into buf, and an fd passed with it; 0 at EOF. */
static size_t srv_read_line(struct fake *f, char *buf, size_t cap, int *passed)
{
	*passed = -1;
	return fm_read_line(f->fd, buf, cap, passed);
}

static void srv_reply(struct fake *f, const char *line, const char *body)
{
	json_object *cmd = json_tokener_parse(line), *id = NULL;
	json_object_object_get_ex(cmd, "id", &id);
	char buf[8192];
	snprintf(buf, sizeof(buf), "{%s, \"id\": %s}\n", body,
		 id ? json_object_to_json_string(id) : "null");
	json_object_put(cmd);
	srv_send(f, buf);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char line[2048];
	int passed;
	srv_send(f, GREETING);
	if (srv_read_line(f, line, sizeof(line), &passed))
		srv_reply(f, line, OK);
	while (f->n < STEPS_MAX && srv_read_line(f, line, sizeof(line), &passed)) {
		int i = f->n++;
		snprintf(f->lines[i], sizeof(f->lines[i]), "%s", line);
		f->passed_fd[i] = passed;
		const struct step *s = f->steps && (size_t)i < f->nsteps ? &f->steps[i] : NULL;
		srv_send(f, s ? s->before : NULL);
		srv_reply(f, line, s && s->reply ? s->reply : OK);
		if (s && s->after) {
			poll(NULL, 0, s->after_ms);
			srv_send(f, s->after);
		}
	}
	close(f->fd);
	return NULL;
}

static struct qmp *fake_start(struct fake *f, const struct step *steps, size_t nsteps)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(f, 0, sizeof(*f));
	f->fd = sv[1];
	f->steps = steps;
	f->nsteps = nsteps;
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	struct qmp *q = NULL;
	struct gw_err err = { 0 };
	assert_int_equal(qmp_open_fd(sv[0], 2000, &q, &err), 0);
	return q;
}

static void fake_stop(struct fake *f, struct qmp *q)
{
	qmp_close(q);
	pthread_join(f->th, NULL);
	for (int i = 0; i < f->n; i++)
		if (f->passed_fd[i] >= 0)
			close(f->passed_fd[i]);
}

static void test_run_state(void **state)
{
	(void)state;
	static const struct step steps[] = {
		{ .reply = OK },
		{ .reply = OK },
		{ .reply = "\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}" },
		{ .reply = "\"return\": {\"status\": \"paused\", \"singlestep\": false, "
			   "\"running\": false}" },
		{ .reply = "\"return\": {\"status\": \"running\", \"running\": true}" },
		/* a truthy non-boolean is not "running" */
		{ .reply = "\"return\": {\"status\": 7, \"running\": \"yes\"}" },
		{ .reply = "\"return\": [1, 2]" },
		{ .reply = OK },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	struct hv_vm_status st;
	assert_int_equal(hv_vm_stop(q, 2000, &err), 0);
	assert_int_equal(hv_vm_cont(q, 2000, &err), 0);
	assert_int_equal(hv_vm_cont(q, 2000, &err), -EREMOTEIO);
	assert_string_equal(err.msg, "cont: GenericError: boom");
	assert_int_equal(hv_vm_query_status(q, &st, 2000, &err), 0);
	assert_int_equal(st.running, 0);
	assert_string_equal(st.status, "paused");
	assert_int_equal(hv_vm_query_status(q, &st, 2000, &err), 0);
	assert_int_equal(st.running, 1);
	assert_string_equal(st.status, "running");
	assert_int_equal(hv_vm_query_status(q, &st, 2000, &err), 0);
	assert_int_equal(st.running, 0);
	assert_string_equal(st.status, "");
	assert_int_equal(hv_vm_query_status(q, &st, 2000, &err), -EPROTO);
	assert_int_equal(hv_vm_quit(q, 2000, NULL), 0);
	fake_stop(&f, q);
	assert_int_equal(f.n, 8);
	assert_string_equal(f.lines[0], "{\"execute\":\"stop\",\"id\":\"godwit-2\"}");
	assert_string_equal(f.lines[1], "{\"execute\":\"cont\",\"id\":\"godwit-3\"}");
	assert_string_equal(f.lines[3], "{\"execute\":\"query-status\",\"id\":\"godwit-5\"}");
	assert_string_equal(f.lines[7], "{\"execute\":\"quit\",\"id\":\"godwit-9\"}");
}

/* What the source sets before a move and the snapshot path's set-up: the same bytes as the
 * engine built by hand before the typed calls. */
static void test_caps_and_params(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, NULL, 0);
	const struct hv_mig_cap_state caps[] = {
		{ HV_MIG_CAP_XBZRLE, 1 }, { HV_MIG_CAP_AUTO_CONVERGE, 0 }, { HV_MIG_CAP_EVENTS, 1 },
		{ HV_MIG_CAP_POSTCOPY_RAM, 0 }, { HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER, 1 },
	};
	assert_int_equal(hv_mig_set_caps(q, caps, ARRAY_SIZE(caps), 2000, &err), 0);
	const struct hv_mig_cap_state bad[] = { { HV_MIG_CAP_COUNT, 1 } };
	assert_int_equal(hv_mig_set_caps(q, bad, 1, 2000, &err), -EINVAL); /* nothing sent */
	struct hv_mig_params p = {
		.set = HV_MIG_P_MAX_BANDWIDTH | HV_MIG_P_MAX_POSTCOPY_BANDWIDTH |
		       HV_MIG_P_DOWNTIME_LIMIT | HV_MIG_P_XBZRLE_CACHE_SIZE,
		.max_bandwidth = INT64_MAX / 2,
		.max_postcopy_bandwidth = INT64_MAX / 2,
		.downtime_limit_ms = 300,
		.xbzrle_cache_size = 64 << 20,
		.multifd_channels = 99, /* not set: not sent */
	};
	assert_int_equal(hv_mig_set_params(q, &p, 2000, &err), 0);
	p = (struct hv_mig_params){ .set = HV_MIG_P_THROTTLE_TRIGGER_THRESHOLD |
					   HV_MIG_P_CPU_THROTTLE_INITIAL |
					   HV_MIG_P_CPU_THROTTLE_INCREMENT,
				    .throttle_trigger_threshold = 1,
				    .cpu_throttle_initial = 20,
				    .cpu_throttle_increment = 10 };
	assert_int_equal(hv_mig_set_params(q, &p, 2000, &err), 0);
	p = (struct hv_mig_params){ .set = HV_MIG_P_MAX_BANDWIDTH | HV_MIG_P_MULTIFD_CHANNELS,
				    .max_bandwidth = INT64_MAX / 2,
				    .multifd_channels = 2 };
	assert_int_equal(hv_mig_set_params(q, &p, 2000, &err), 0);
	p = (struct hv_mig_params){ .set = HV_MIG_P_AVAIL_SWITCHOVER_BANDWIDTH,
				    .avail_switchover_bandwidth = 300 << 20 };
	assert_int_equal(hv_mig_set_params(q, &p, 2000, &err), 0);
	p = (struct hv_mig_params){ 0 };
	assert_int_equal(hv_mig_set_params(q, &p, 2000, &err), -EINVAL);
	fake_stop(&f, q);
	assert_int_equal(f.n, 5);
	assert_string_equal(f.lines[0],
		"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":["
		"{\"capability\":\"xbzrle\",\"state\":true},"
		"{\"capability\":\"auto-converge\",\"state\":false},"
		"{\"capability\":\"events\",\"state\":true},"
		"{\"capability\":\"postcopy-ram\",\"state\":false},"
		"{\"capability\":\"pause-before-switchover\",\"state\":true}]},\"id\":\"godwit-2\"}");
	assert_string_equal(f.lines[1],
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{"
		"\"max-bandwidth\":4611686018427387903,\"max-postcopy-bandwidth\":4611686018427387903,"
		"\"downtime-limit\":300,\"xbzrle-cache-size\":67108864},\"id\":\"godwit-3\"}");
	assert_string_equal(f.lines[2],
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{"
		"\"throttle-trigger-threshold\":1,\"cpu-throttle-initial\":20,"
		"\"cpu-throttle-increment\":10},\"id\":\"godwit-4\"}");
	assert_string_equal(f.lines[3],
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{"
		"\"max-bandwidth\":4611686018427387903,\"multifd-channels\":2},\"id\":\"godwit-5\"}");
	assert_string_equal(f.lines[4],
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{"
		"\"avail-switchover-bandwidth\":314572800},\"id\":\"godwit-6\"}");
}

static void test_query_caps(void **state)
{
	(void)state;
	static const struct step steps[] = {
		{ .reply = "\"return\": [{\"state\": false, \"capability\": \"xbzrle\"}, "
			   "{\"state\": true, \"capability\": \"events\"}, "
			   "{\"state\": true, \"capability\": \"x-colo\"}, "
			   "{\"state\": \"on\", \"capability\": \"multifd\"}, "
			   "{\"state\": true, \"capability\": 5}, 17, "
			   "{\"state\": false, \"capability\": \"mapped-ram\"}]" },
		{ .reply = "\"return\": {\"capability\": \"mapped-ram\"}" },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	unsigned have = 0, on = 0;
	assert_int_equal(hv_mig_query_caps(q, &have, &on, 2000, &err), 0);
	assert_int_equal(have, HV_MIG_CAP_BIT(HV_MIG_CAP_XBZRLE) | HV_MIG_CAP_BIT(HV_MIG_CAP_EVENTS) |
			       HV_MIG_CAP_BIT(HV_MIG_CAP_MULTIFD) |
			       HV_MIG_CAP_BIT(HV_MIG_CAP_MAPPED_RAM));
	assert_int_equal(on, HV_MIG_CAP_BIT(HV_MIG_CAP_EVENTS));
	assert_int_equal(hv_mig_query_caps(q, &have, NULL, 2000, &err), 0);
	assert_int_equal(have, 0); /* not a list */
	fake_stop(&f, q);
	assert_string_equal(f.lines[0],
			    "{\"execute\":\"query-migrate-capabilities\",\"id\":\"godwit-2\"}");

	enum hv_mig_cap c;
	assert_int_equal(hv_mig_cap_from_name("postcopy-ram", &c), 0);
	assert_int_equal(c, HV_MIG_CAP_POSTCOPY_RAM);
	assert_int_equal(hv_mig_cap_from_name("postcopy", &c), -ENOENT);
	assert_int_equal(hv_mig_cap_from_name(NULL, &c), -ENOENT);
	assert_null(hv_mig_cap_name(HV_MIG_CAP_COUNT));
	assert_null(hv_mig_cap_name((enum hv_mig_cap)-1));
}

static void test_start_and_steer(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, NULL, 0);
	assert_int_equal(hv_mig_start(q, HV_MIG_OUT, "fd:mig", 0, 2000, &err), 0);
	assert_int_equal(hv_mig_start(q, HV_MIG_OUT, "fd:mig", 1, 2000, &err), 0);
	assert_int_equal(hv_mig_start(q, HV_MIG_IN, "file:/dev/fdset/3,offset=4096", 0, 2000,
				      &err), 0);
	assert_int_equal(hv_mig_start(q, HV_MIG_RECOVER, "fd:mig", 0, 2000, &err), 0);
	assert_int_equal(hv_mig_start(q, HV_MIG_IN, "fd:mig", 1, 2000, &err), -EINVAL);
	assert_int_equal(hv_mig_start(q, (enum hv_mig_dir)7, "fd:mig", 0, 2000, &err), -EINVAL);
	assert_int_equal(hv_mig_continue(q, HV_MIG_PRE_SWITCHOVER, 2000, &err), 0);
	assert_int_equal(hv_mig_continue(q, HV_MIG_OTHER, 2000, &err), -EINVAL);
	assert_int_equal(hv_mig_start_postcopy(q, 2000, &err), 0);
	assert_int_equal(hv_mig_cancel(q, 2000, NULL), 0);
	fake_stop(&f, q);
	assert_int_equal(f.n, 7);
	assert_string_equal(f.lines[0], "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:mig\"},"
					"\"id\":\"godwit-2\"}");
	assert_string_equal(f.lines[1], "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:mig\","
					"\"resume\":true},\"id\":\"godwit-3\"}");
	/* json-c writes "/" as "\/", as the engine's own JSON did */
	assert_string_equal(f.lines[2], "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":"
					"\"file:\\/dev\\/fdset\\/3,offset=4096\"},\"id\":\"godwit-4\"}");
	assert_string_equal(f.lines[3], "{\"execute\":\"migrate-recover\",\"arguments\":{\"uri\":"
					"\"fd:mig\"},\"id\":\"godwit-5\"}");
	assert_string_equal(f.lines[4], "{\"execute\":\"migrate-continue\",\"arguments\":{\"state\":"
					"\"pre-switchover\"},\"id\":\"godwit-6\"}");
	assert_string_equal(f.lines[5], "{\"execute\":\"migrate-start-postcopy\",\"id\":\"godwit-7\"}");
	assert_string_equal(f.lines[6], "{\"execute\":\"migrate_cancel\",\"id\":\"godwit-8\"}");
}

/* query-migrate of a pre-copy in its second round, as QEMU 10.0 answers it */
#define REAL_QUERY_MIGRATE                                                                      \
	"\"return\": {\"expected-downtime\": 300, \"status\": \"active\", \"setup-time\": 14, "    \
	"\"total-time\": 1834, \"ram\": {\"total\": 537403392, \"postcopy-requests\": 0, "        \
	"\"dirty-sync-count\": 2, \"multifd-bytes\": 0, \"pages-per-second\": 30412, "            \
	"\"downtime-bytes\": 0, \"page-size\": 4096, \"remaining\": 21319680, "                    \
	"\"postcopy-bytes\": 0, \"mbps\": 998.45056, \"transferred\": 229115467, "                \
	"\"dirty-sync-missed-zero-copy\": 0, \"precopy-bytes\": 229115467, "                       \
	"\"duplicate\": 75893, \"dirty-pages-rate\": 5120, \"normal-bytes\": 228126720, "          \
	"\"normal\": 55695}, \"xbzrle-cache\": {\"cache-size\": 67108864, \"encoding-rate\": "     \
	"4.25, \"bytes\": 1048576, \"cache-miss-rate\": 0.5, \"pages\": 100, \"overflow\": 0, "    \
	"\"cache-miss\": 12}}"

static void test_query_migrate_real(void **state)
{
	(void)state;
	static const struct step steps[] = {
		{ .reply = REAL_QUERY_MIGRATE },
		{ .reply = "\"return\": {}" }, /* no migration yet */
		{ .reply = "\"return\": {\"status\": \"failed\", \"error-desc\": \"Unable to write to "
			   "socket: Connection reset by peer\", \"total-time\": 10}" },
		{ .reply = "\"return\": \"completed\"" },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	struct hv_mig_stats s;
	assert_int_equal(hv_mig_query(q, &s, 2000, &err), 0);
	assert_int_equal(s.status, HV_MIG_ACTIVE);
	assert_string_equal(s.status_name, "active");
	assert_string_equal(s.error_desc, "");
	assert_int_equal(s.total_time_ms, 1834);
	assert_int_equal(s.downtime_ms, 0);
	assert_true(s.has_ram);
	assert_int_equal(s.transferred, 229115467);
	assert_int_equal(s.remaining, 21319680);
	assert_int_equal(s.total, 537403392);
	assert_int_equal(s.dirty_sync_count, 2);
	assert_int_equal(s.postcopy_requests, 0);
	assert_int_equal(s.dirty_pages_rate, 5120);
	assert_int_equal(s.page_size, 4096);
	assert_true(fabs(s.mbps - 998.45056) < 1e-9);
	assert_true(s.dirty_rate == 5120.0 * 4096);
	assert_true(s.has_xbzrle);
	assert_true(s.xbzrle_encoding_rate == 4.25);
	assert_true(s.xbzrle_cache_miss_rate == 0.5);

	assert_int_equal(hv_mig_query(q, &s, 2000, &err), 0);
	assert_int_equal(s.status, HV_MIG_NONE);
	assert_string_equal(s.status_name, "none");
	assert_false(s.has_ram);
	assert_false(s.has_xbzrle);

	assert_int_equal(hv_mig_query(q, &s, 2000, &err), 0);
	assert_int_equal(s.status, HV_MIG_FAILED);
	assert_string_equal(s.error_desc, "Unable to write to socket: Connection reset by peer");
	assert_int_equal(s.total_time_ms, 10);

	assert_int_equal(hv_mig_query(q, &s, 2000, &err), -EPROTO);
	assert_int_equal(s.status, HV_MIG_NONE);
	fake_stop(&f, q);
	assert_string_equal(f.lines[0], "{\"execute\":\"query-migrate\",\"id\":\"godwit-2\"}");
}

static int parse(const char *json, struct hv_mig_stats *s)
{
	json_object *o = json_tokener_parse(json);
	int r = hv_mig_stats_parse(o, s, NULL);
	json_object_put(o);
	return r;
}

/* The parser on what no QEMU should send: every member falls back to its safe default. */
static void test_query_migrate_hostile(void **state)
{
	(void)state;
	struct hv_mig_stats s;
	/* wrong types everywhere */
	assert_int_equal(parse("{\"status\": 5, \"error-desc\": [\"x\"], \"total-time\": \"12\", "
			       "\"downtime\": 1.5, \"ram\": \"lots\", \"xbzrle-cache\": [] }", &s), 0);
	assert_int_equal(s.status, HV_MIG_NONE);
	assert_string_equal(s.status_name, "none");
	assert_string_equal(s.error_desc, "");
	assert_int_equal(s.total_time_ms, 0);
	assert_int_equal(s.downtime_ms, 0);
	assert_false(s.has_ram);
	assert_false(s.has_xbzrle);

	/* negative counters and rates, numbers as strings, a missing page size */
	assert_int_equal(parse("{\"status\": \"active\", \"ram\": {\"transferred\": -5, "
			       "\"remaining\": \"100\", \"total\": null, \"mbps\": -3.5, "
			       "\"dirty-pages-rate\": 10, \"dirty-sync-count\": true}, "
			       "\"xbzrle-cache\": {\"encoding-rate\": \"fast\", "
			       "\"cache-miss-rate\": 7}}", &s), 0);
	assert_true(s.has_ram);
	assert_int_equal(s.transferred, 0);
	assert_int_equal(s.remaining, 0);
	assert_int_equal(s.total, 0);
	assert_int_equal(s.dirty_sync_count, 0);
	assert_true(s.mbps == 0);
	assert_int_equal(s.page_size, 0);
	assert_true(s.dirty_rate == 10.0 * 4096); /* QEMU's usual page when it does not say */
	assert_true(s.xbzrle_encoding_rate == 0);
	assert_true(s.xbzrle_cache_miss_rate == 7); /* a whole number QEMU printed as such */

	/* beyond int64: json-c caps it, nothing wraps negative */
	assert_int_equal(parse("{\"ram\": {\"transferred\": 18446744073709551615, "
			       "\"page-size\": 9223372036854775807, \"dirty-pages-rate\": "
			       "9223372036854775807}}", &s), 0);
	assert_true(s.transferred == (uint64_t)INT64_MAX);
	assert_true(isfinite(s.dirty_rate) && s.dirty_rate > 0);

	/* a status this list lacks, and one too long to be any: both OTHER, the name kept cut */
	assert_int_equal(parse("{\"status\": \"postcopy-exotic\"}", &s), 0);
	assert_int_equal(s.status, HV_MIG_OTHER);
	assert_string_equal(s.status_name, "postcopy-exotic");
	char big[4096];
	snprintf(big, sizeof(big), "{\"status\": \"completed%0400d\", \"error-desc\": \"%01000d\"}",
		 0, 0);
	assert_int_equal(parse(big, &s), 0);
	assert_int_equal(s.status, HV_MIG_OTHER);
	assert_int_equal(strlen(s.status_name), HV_MIG_STATUS_NAME_MAX - 1);
	assert_int_equal(strlen(s.error_desc), HV_MIG_ERROR_MAX - 1);
	/* a known name with more after a NUL is not that name */
	assert_int_equal(parse("{\"status\": \"completed\\u0000junk\"}", &s), 0);
	assert_int_equal(s.status, HV_MIG_OTHER);
	assert_string_equal(s.status_name, "completed");
	/* exactly a known name: that status */
	assert_int_equal(parse("{\"status\": \"postcopy-recover-setup\"}", &s), 0);
	assert_int_equal(s.status, HV_MIG_POSTCOPY_RECOVER_SETUP);

	/* not an object at all */
	assert_int_equal(parse("[]", &s), -EPROTO);
	assert_int_equal(hv_mig_stats_parse(NULL, &s, NULL), -EPROTO);
	assert_string_equal(s.status_name, "none");

	assert_string_equal(hv_mig_status_name(HV_MIG_PRE_SWITCHOVER), "pre-switchover");
	assert_string_equal(hv_mig_status_name((enum hv_mig_status)99), "?");
	assert_int_equal(hv_mig_status_from_name("wait-unplug"), HV_MIG_WAIT_UNPLUG);
	assert_int_equal(hv_mig_status_from_name("other"), HV_MIG_OTHER);
	assert_int_equal(hv_mig_status_from_name(NULL), HV_MIG_NONE);
}

static void test_fd_passing(void **state)
{
	(void)state;
	static const struct step steps[] = {
		{ .reply = OK },
		{ .reply = "\"return\": {\"fdset-id\": 3, \"fd\": 25}" },
		{ .reply = "\"return\": {\"fd\": 25}" },
		{ .reply = "\"return\": {\"fdset-id\": -1, \"fd\": 25}" },
		{ .reply = OK },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	int p[2];
	assert_int_equal(pipe(p), 0);
	int64_t set = -7;
	assert_int_equal(hv_vm_getfd(q, "mig", p[0], 2000, &err), 0);
	assert_int_equal(hv_vm_add_fd(q, p[1], &set, 2000, &err), 0);
	assert_int_equal(set, 3);
	set = -7;
	assert_int_equal(hv_vm_add_fd(q, p[1], &set, 2000, &err), -EPROTO);
	assert_string_equal(err.msg, "add-fd: no fdset-id in QEMU's reply");
	assert_int_equal(hv_vm_add_fd(q, p[1], &set, 2000, &err), -EPROTO);
	assert_int_equal(set, -7); /* untouched on failure */
	assert_int_equal(hv_vm_remove_fd(q, 3, 2000, &err), 0);
	assert_int_equal(hv_vm_getfd(q, "mig", -1, 2000, &err), -EBADF); /* nothing sent */
	fake_stop(&f, q);
	close(p[0]);
	close(p[1]);
	assert_int_equal(f.n, 5);
	assert_string_equal(f.lines[0], "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"mig\"},"
					"\"id\":\"godwit-2\"}");
	assert_true(f.passed_fd[0] >= 0);
	assert_string_equal(f.lines[1], "{\"execute\":\"add-fd\",\"id\":\"godwit-3\"}");
	assert_true(f.passed_fd[1] >= 0);
	assert_string_equal(f.lines[4], "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":3},"
					"\"id\":\"godwit-6\"}");
	assert_int_equal(f.passed_fd[4], -1);
}

/* a move inside TLS: QEMU's credentials, its stream's and the NBD server's and client's use */
static void test_tls(void **state)
{
	(void)state;
	const struct step steps[] = {
		{ .reply = OK }, /* object-add */
		{ .reply = OK }, /* migrate-set-parameters */
		{ .reply = OK }, /* nbd-server-start */
		{ .reply = OK }, /* blockdev-add */
		{ .reply = "\"error\": {\"class\": \"GenericError\", \"desc\": \"Unable to access "
			   "credentials /t/ca-cert.pem: No such file or directory\"}" },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	assert_int_equal(hv_tls_creds_add(q, HV_TLS_CREDS, "/t", 1, 2000, &err), 0);
	assert_int_equal(hv_mig_set_tls(q, HV_TLS_CREDS, "10.0.0.2", 2000, &err), 0);
	assert_int_equal(hv_nbd_server_start_fd(q, "nbd", 2, HV_TLS_CREDS, 2000, &err), 0);
	assert_int_equal(hv_blockdev_add_nbd(q, "mig-target0", "10.0.0.2", 40123, "disk0",
					     HV_TLS_CREDS, 2000, &err), 0);
	assert_true(hv_tls_creds_add(q, HV_TLS_CREDS, "/t", 0, 2000, &err) < 0);
	assert_non_null(strstr(err.msg, "ca-cert.pem"));
	fake_stop(&f, q);
	assert_int_equal(f.n, 5);
	assert_string_equal(f.lines[0],
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"tls-creds-x509\",\"id\":"
		"\"gw-tls\",\"dir\":\"\\/t\",\"endpoint\":\"server\",\"verify-peer\":true},"
		"\"id\":\"godwit-2\"}");
	assert_string_equal(f.lines[1],
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"tls-creds\":\"gw-tls\","
		"\"tls-hostname\":\"10.0.0.2\"},\"id\":\"godwit-3\"}");
	assert_string_equal(f.lines[2],
		"{\"execute\":\"nbd-server-start\",\"arguments\":{\"addr\":{\"type\":\"fd\","
		"\"data\":{\"str\":\"nbd\"}},\"max-connections\":2,\"tls-creds\":\"gw-tls\"},"
		"\"id\":\"godwit-4\"}");
	assert_string_equal(f.lines[3],
		"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"nbd\",\"node-name\":"
		"\"mig-target0\",\"server\":{\"type\":\"inet\",\"host\":\"10.0.0.2\",\"port\":\"40123\"},"
		"\"export\":\"disk0\",\"tls-creds\":\"gw-tls\",\"tls-hostname\":\"10.0.0.2\"},"
		"\"id\":\"godwit-5\"}");
	assert_string_equal(f.lines[4],
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"tls-creds-x509\",\"id\":"
		"\"gw-tls\",\"dir\":\"\\/t\",\"endpoint\":\"client\",\"verify-peer\":true},"
		"\"id\":\"godwit-6\"}");
}

/* query-block as QEMU answers for a `-drive if=none,id=disk0` and an empty CD drive */
#define REAL_QUERY_BLOCK                                                                        \
	"\"return\": [{\"io-status\": \"ok\", \"device\": \"ide1-cd0\", \"locked\": false, "       \
	"\"removable\": true, \"tray_open\": false, \"type\": \"unknown\"}, "                      \
	"{\"io-status\": \"ok\", \"device\": \"disk0\", \"locked\": false, \"removable\": false, " \
	"\"inserted\": {\"iops_rd\": 0, \"ro\": false, \"node-name\": \"#block172\", "           \
	"\"backing_file_depth\": 1, \"drv\": \"qcow2\", \"file\": \"/c/disk.qcow2\"}, "            \
	"\"qdev\": \"/machine/peripheral/vd0/virtio-backend\", \"type\": \"unknown\"}]"

static void test_block(void **state)
{
	(void)state;
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	char longreply[512];
	snprintf(longreply, sizeof(longreply), "\"return\": [{\"device\": \"disk0\", "
		 "\"inserted\": {\"node-name\": \"%s\"}}]", longname);
	const struct step steps[] = {
		{ .reply = REAL_QUERY_BLOCK },
		{ .reply = REAL_QUERY_BLOCK },
		{ .reply = longreply },
		{ .reply = OK }, /* nbd-server-start */
		{ .reply = OK }, /* block-export-add */
		{ .reply = OK }, /* block-export-del */
		{ .reply = OK }, /* nbd-server-stop */
		{ .reply = "\"return\": [{\"type\": \"nbd\", \"id\": \"mig-disk0\", "
			   "\"node-name\": \"#block172\", \"shutting-down\": true}]" },
		{ .reply = "\"return\": {}" },
		{ .reply = OK }, /* blockdev-add */
		{ .reply = OK }, /* blockdev-mirror */
		{ .reply = "\"return\": [{\"device\": \"other\", \"ready\": true}, "
			   "{\"device\": \"mig-mirror0\", \"ready\": false, \"type\": \"mirror\"}]" },
		{ .reply = "\"return\": [{\"device\": \"mig-mirror0\", \"ready\": true}]" },
		{ .reply = "\"return\": [{\"device\": \"mig-mirror0\", \"ready\": \"yes\"}]" },
		{ .reply = "\"return\": [{\"device\": \"other\", \"ready\": true}]" },
		{ .reply = OK }, /* block-job-cancel */
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	char node[128];
	assert_int_equal(hv_block_node_of(q, "disk0", node, sizeof(node), 2000, &err), 0);
	assert_string_equal(node, "#block172");
	assert_int_equal(hv_block_node_of(q, "ide1-cd0", node, sizeof(node), 2000, &err), -ENOENT);
	assert_string_equal(err.msg, "QEMU has no inserted ide1-cd0");
	assert_int_equal(hv_block_node_of(q, "disk0", node, sizeof(node), 2000, &err), -EPROTO);
	assert_int_equal(hv_nbd_server_start_fd(q, "nbd", 1, NULL, 2000, &err), 0);
	assert_int_equal(hv_block_export_add_nbd(q, "mig-disk0", "#block172", "disk0", 1, 2000,
						 &err), 0);
	assert_int_equal(hv_block_export_del(q, "mig-disk0", 1, 2000, NULL), 0);
	assert_int_equal(hv_nbd_server_stop(q, 2000, &err), 0);
	size_t n = 9;
	assert_int_equal(hv_block_export_count(q, &n, 2000, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hv_block_export_count(q, &n, 2000, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hv_blockdev_add_nbd(q, "mig-target0", "10.0.0.2", 40123, "disk0", NULL,
					     2000, &err), 0);
	struct hv_mirror m = { .job_id = "mig-mirror0", .device = "disk0",
			       .target = "mig-target0", .sync = HV_MIRROR_SYNC_TOP,
			       .copy_mode = HV_MIRROR_WRITE_BLOCKING };
	assert_int_equal(hv_blockdev_mirror(q, &m, 2000, &err), 0);
	assert_int_equal(hv_block_job_ready(q, "mig-mirror0", 2000, &err), 0);
	assert_int_equal(hv_block_job_ready(q, "mig-mirror0", 2000, &err), 1);
	assert_int_equal(hv_block_job_ready(q, "mig-mirror0", 2000, &err), 0);
	gw_err_clear(&err);
	assert_int_equal(hv_block_job_ready(q, "mig-mirror0", 2000, &err), -ENOENT);
	assert_int_equal(err.code, 0); /* gone is an answer, not an error */
	assert_int_equal(hv_block_job_cancel(q, "mig-mirror0", 0, 2000, &err), 0);
	fake_stop(&f, q);
	assert_int_equal(f.n, 16);
	assert_string_equal(f.lines[0], "{\"execute\":\"query-block\",\"id\":\"godwit-2\"}");
	assert_string_equal(f.lines[3],
		"{\"execute\":\"nbd-server-start\",\"arguments\":{\"addr\":{\"type\":\"fd\","
		"\"data\":{\"str\":\"nbd\"}},\"max-connections\":1},\"id\":\"godwit-5\"}");
	assert_string_equal(f.lines[4],
		"{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"nbd\",\"id\":\"mig-disk0\","
		"\"node-name\":\"#block172\",\"name\":\"disk0\",\"writable\":true},\"id\":\"godwit-6\"}");
	assert_string_equal(f.lines[5],
		"{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"mig-disk0\",\"mode\":\"hard\"},"
		"\"id\":\"godwit-7\"}");
	assert_string_equal(f.lines[6], "{\"execute\":\"nbd-server-stop\",\"id\":\"godwit-8\"}");
	assert_string_equal(f.lines[7], "{\"execute\":\"query-block-exports\",\"id\":\"godwit-9\"}");
	assert_string_equal(f.lines[9],
		"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"nbd\",\"node-name\":"
		"\"mig-target0\",\"server\":{\"type\":\"inet\",\"host\":\"10.0.0.2\",\"port\":\"40123\"},"
		"\"export\":\"disk0\"},\"id\":\"godwit-11\"}");
	assert_string_equal(f.lines[10],
		"{\"execute\":\"blockdev-mirror\",\"arguments\":{\"job-id\":\"mig-mirror0\",\"device\":"
		"\"disk0\",\"target\":\"mig-target0\",\"sync\":\"top\",\"copy-mode\":\"write-blocking\"},"
		"\"id\":\"godwit-12\"}");
	assert_string_equal(f.lines[11], "{\"execute\":\"query-block-jobs\",\"id\":\"godwit-13\"}");
	assert_string_equal(f.lines[15],
		"{\"execute\":\"block-job-cancel\",\"arguments\":{\"device\":\"mig-mirror0\",\"force\":"
		"false},\"id\":\"godwit-17\"}");
}

static void test_blockdev_del(void **state)
{
	(void)state;
	struct fake f;
	struct qmp *q = fake_start(&f, NULL, 0);
	assert_int_equal(hv_blockdev_del(q, "mig-target0", 2000, NULL), 0);
	fake_stop(&f, q);
	assert_string_equal(f.lines[0], "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":"
					"\"mig-target0\"},\"id\":\"godwit-2\"}");
}

/* MIGRATION before MIGRATION_PASS, other events left queued; with a timeout, an event that
 * arrives later wakes the wait. */
static void test_migration_events(void **state)
{
	(void)state;
	static const struct step steps[] = {
		{ .before = "{\"event\": \"MIGRATION_PASS\", \"data\": {\"pass\": 2}}\n"
			    "{\"event\": \"STOP\"}\n"
			    "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}}\n",
		  .reply = OK,
		  .after = "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}\n",
		  .after_ms = 100 },
	};
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, steps, ARRAY_SIZE(steps));
	assert_int_equal(hv_vm_cont(q, 2000, &err), 0); /* reads (and queues) the three events */
	enum hv_mig_event which = 0;
	assert_int_equal(hv_mig_wait_event(q, 0, &which, &err), 0);
	assert_int_equal(which, HV_MIG_EV_MIGRATION);
	assert_int_equal(hv_mig_wait_event(q, 0, &which, &err), 0);
	assert_int_equal(which, HV_MIG_EV_PASS);
	assert_int_equal(hv_mig_wait_event(q, 0, &which, &err), -ETIMEDOUT);
	/* the next one comes 100 ms after cont's reply */
	assert_int_equal(hv_mig_wait_event(q, 2000, &which, &err), 0);
	assert_int_equal(which, HV_MIG_EV_MIGRATION);
	assert_int_equal(hv_mig_wait_event(q, 20, NULL, &err), -ETIMEDOUT);
	json_object *ev = qmp_next_event(q), *name;
	assert_non_null(ev);
	assert_true(json_object_object_get_ex(ev, "event", &name));
	assert_string_equal(json_object_get_string(name), "STOP");
	json_object_put(ev);
	assert_null(qmp_next_event(q));
	fake_stop(&f, q);
	assert_int_equal(f.n, 1);
}

/* A monitor that closed: the wait ends with the connection's error, not a timeout. */
static void test_migration_event_peer_gone(void **state)
{
	(void)state;
	struct fake f;
	struct gw_err err = { 0 };
	struct qmp *q = fake_start(&f, NULL, 0);
	shutdown(f.fd, SHUT_RDWR);
	assert_int_equal(hv_mig_wait_event(q, 2000, NULL, &err), -EPIPE);
	assert_int_equal(hv_mig_wait_event(q, 0, NULL, &err), -EPIPE);
	fake_stop(&f, q);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* the fake writes to a client that gave up */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_state),
		cmocka_unit_test(test_caps_and_params),
		cmocka_unit_test(test_query_caps),
		cmocka_unit_test(test_start_and_steer),
		cmocka_unit_test(test_query_migrate_real),
		cmocka_unit_test(test_query_migrate_hostile),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_blockdev_del),
		cmocka_unit_test(test_migration_events),
		cmocka_unit_test(test_migration_event_peer_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
