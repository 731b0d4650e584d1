/* Tests for the migration protocol wire layer and messages (src/migproto/protocol*.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "godwit/migproto.h"
#include "godwit/util.h"

static int sp[2];
static struct mig_conn ca, cb;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	mig_conn_init(&ca, sp[0], 2000);
	mig_conn_init(&cb, sp[1], 2000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(sp[0]);
	close(sp[1]);
	return 0;
}

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(mig_crc32c(0, "123456789", 9), 0xE3069283u);
	/* incremental = one shot; odd lengths exercise the byte tail */
	uint32_t c = mig_crc32c(0, "12345", 5);
	assert_int_equal(mig_crc32c(c, "6789", 4), 0xE3069283u);
	assert_int_equal(mig_crc32c(0, "", 0), 0);
}

static void test_header(void **state)
{
	(void)state;
	struct mig_hdr h = { MIG_MAGIC, MIG_VERSION, MIG_CONFIG, 42, 7, 0xdeadbeef }, d;
	uint8_t b[MIG_HDR_SIZE];
	struct gw_err err = { 0 };
	mig_hdr_encode(&h, b);
	assert_memory_equal(b, "GWM1", 4);
	assert_int_equal(mig_hdr_decode(b, &d, &err), 0);
	assert_int_equal(d.type, MIG_CONFIG);
	assert_int_equal(d.length, 42);
	assert_int_equal(d.seq, 7);
	assert_int_equal(d.crc, 0xdeadbeef);

	b[0] = 'X';
	assert_int_equal(mig_hdr_decode(b, &d, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "bad message magic"));
	h.version = 1; /* before every disk moved over NBD */
	mig_hdr_encode(&h, b);
	assert_int_equal(mig_hdr_decode(b, &d, &err), -EPROTO);
	assert_string_equal(err.msg,
			    "unsupported migration protocol version 1 (this godwit speaks 2)");
	h.version = MIG_VERSION;
	h.type = 99;
	mig_hdr_encode(&h, b);
	assert_int_equal(mig_hdr_decode(b, &d, &err), -EPROTO);
	assert_string_equal(err.msg, "unknown message type 99");
	h.type = MIG_HELLO;
	h.length = MIG_MAX_JSON + 1;
	mig_hdr_encode(&h, b);
	assert_int_equal(mig_hdr_decode(b, &d, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "HELLO message of 1048577 bytes exceeds"));
	h.type = MIG_DISK_DATA;	/* chunks may be bigger */
	mig_hdr_encode(&h, b);
	assert_int_equal(mig_hdr_decode(b, &d, &err), 0);
}

static void test_send_recv(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct mig_msg m;
	assert_int_equal(mig_send(&ca, MIG_RUNNING, "{}", 2, &err), 0);
	assert_int_equal(mig_send(&ca, MIG_DISK_DATA, "abc", 3, &err), 0);
	assert_int_equal(mig_recv(&cb, 0, &m, &err), 0);
	assert_int_equal(m.type, MIG_RUNNING);
	assert_int_equal(m.seq, 0);
	assert_string_equal(m.payload, "{}");
	mig_msg_free(&m);
	assert_int_equal(mig_recv(&cb, 0, &m, &err), 0);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.payload, "abc", 3);
	mig_msg_free(&m);
	/* nothing more: times out with a clear error */
	assert_int_equal(mig_recv(&cb, 50, &m, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "no message from peer in 50 ms"));
}

static void test_corrupt_payload(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct mig_msg m;
	struct mig_hdr h = { MIG_MAGIC, MIG_VERSION, MIG_DONE, 5, 0, mig_crc32c(0, "hello", 5) };
	uint8_t b[MIG_HDR_SIZE];
	mig_hdr_encode(&h, b);
	assert_int_equal(write(sp[0], b, sizeof(b)), sizeof(b));
	assert_int_equal(write(sp[0], "hellO", 5), 5);
	assert_int_equal(mig_recv(&cb, 0, &m, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "checksum mismatch in DONE message 0"));
	assert_null(m.payload);
}

static void test_bad_sequence(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct mig_msg m;
	ca.tx_seq = 5;
	assert_int_equal(mig_send(&ca, MIG_COMMIT, "{}", 2, &err), 0);
	assert_int_equal(mig_recv(&cb, 0, &m, &err), -EPROTO);
	assert_string_equal(err.msg, "COMMIT message has sequence 5, expected 0");
}

static void test_truncated_and_closed(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct mig_msg m;
	struct mig_hdr h = { MIG_MAGIC, MIG_VERSION, MIG_DONE, 100, 0, 0 };
	uint8_t b[MIG_HDR_SIZE];
	mig_hdr_encode(&h, b);
	assert_int_equal(write(sp[0], b, sizeof(b)), sizeof(b));
	assert_int_equal(write(sp[0], "{}", 2), 2);
	shutdown(sp[0], SHUT_WR);
	assert_int_equal(mig_recv(&cb, 0, &m, &err), -EPIPE);
	assert_non_null(strstr(err.msg, "inside a DONE message"));
	assert_int_equal(mig_recv(&cb, 0, &m, &err), -ECONNRESET);
	/* a connection already closed (fd -1) fails at once instead of waiting its timeout out */
	struct mig_conn gone = { .fd = -1, .timeout_ms = 60000 };
	int64_t t0 = gw_now_mono_ns();
	assert_int_equal(mig_send(&gone, MIG_DONE, "{}", 2, &err), -EBADF);
	assert_int_equal(mig_recv(&gone, 0, &m, &err), -EBADF);
	assert_true(gw_now_mono_ns() - t0 < 1000000000LL);
}

static void test_json_expect_and_abort(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct json_object *o = NULL;
	assert_int_equal(mig_send(&ca, MIG_RUNNING, "{}", 2, &err), 0);
	assert_int_equal(mig_recv_json(&cb, MIG_COMMIT, &o, &err), -EPROTO);
	assert_string_equal(err.msg, "expected COMMIT, got RUNNING");
	assert_int_equal(mig_send(&ca, MIG_COMMIT, "[1]", 3, &err), 0);
	assert_int_equal(mig_recv_json(&cb, MIG_COMMIT, &o, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "not a JSON object"));
	assert_int_equal(mig_send(&ca, MIG_COMMIT, "{} x", 4, &err), 0);
	assert_int_equal(mig_recv_json(&cb, MIG_COMMIT, &o, &err), -EPROTO);
	assert_int_equal(mig_send_abort(&ca, "no-space", "need 2 GiB", &err), 0);
	assert_int_equal(mig_recv_json(&cb, MIG_COMMIT, &o, &err), -ECONNABORTED);
	assert_string_equal(err.msg, "peer aborted: no-space: need 2 GiB");
}

static void test_hello(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	uint64_t common = 0;
	char sw[64];
	/* the peer's HELLO is already queued: a symmetric exchange from one process */
	const char *peer = "{\"proto\":2,\"features\":10,\"software\":\"9.9.9\"}";
	assert_int_equal(mig_send(&cb, MIG_HELLO, peer, (uint32_t)strlen(peer), &err), 0);
	assert_int_equal(mig_hello(&ca, MIG_FEAT_ALL & ~MIG_FEAT_XBZRLE, &common, sw, &err), 0);
	assert_int_equal(common, MIG_FEAT_LIVE);
	assert_string_equal(sw, "9.9.9");

	const char *newer = "{\"proto\":3,\"features\":15,\"software\":\"2.0\"}";
	assert_int_equal(mig_send(&cb, MIG_HELLO, newer, (uint32_t)strlen(newer), &err), 0);
	assert_int_equal(mig_hello(&ca, MIG_FEAT_ALL, &common, sw, &err), -EPROTONOSUPPORT);
	assert_string_equal(err.msg, "peer (godwit 2.0) speaks migration protocol 3, this godwit "
			    "speaks 2");
	const char *bad = "{\"proto\":2,\"software\":\"2.0\"}";
	assert_int_equal(mig_send(&cb, MIG_HELLO, bad, (uint32_t)strlen(bad), &err), 0);
	assert_int_equal(mig_hello(&ca, MIG_FEAT_ALL, &common, sw, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "\"features\" missing"));
}

static void fill_config(struct mig_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->name, "web");
	strcpy(c->image, "sha256:");
	memset(c->image + 7, 'a', 64);
	c->memory = 1ull << 30;
	c->cpus = 2;
	c->n_disks = 1;
	strcpy(c->disks[0].id, "root");
	c->disks[0].size = 12345;
	c->n_nics = 1;
	strcpy(c->macs[0], "52:54:00:12:34:56");
	c->kind = MIG_KIND_LIVE;
	c->cap_xbzrle = 1;
	c->agent = json_tokener_parse("{\"tx_seq\":17}");
}

static void test_config_roundtrip(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct mig_config c, d;
	fill_config(&c);
	struct json_object *o = mig_config_to_json(&c), *got;
	assert_int_equal(mig_send_json(&ca, MIG_CONFIG, o, &err), 0);
	json_object_put(o);
	assert_int_equal(mig_recv_json(&cb, MIG_CONFIG, &got, &err), 0);
	assert_int_equal(mig_config_from_json(got, &d, &err), 0);
	json_object_put(got);
	assert_string_equal(d.name, "web");
	assert_string_equal(d.image, c.image);
	assert_int_equal(d.memory, 1ull << 30);
	assert_int_equal(d.cpus, 2);
	assert_int_equal(d.n_disks, 1);
	assert_int_equal(d.disks[0].size, 12345);
	assert_string_equal(d.macs[0], "52:54:00:12:34:56");
	assert_int_equal(d.kind, MIG_KIND_LIVE);
	assert_true(d.cap_xbzrle);
	assert_false(d.cap_postcopy);
	struct json_object *seq;
	assert_true(json_object_object_get_ex(d.agent, "tx_seq", &seq));
	assert_int_equal(json_object_get_int(seq), 17);
	mig_config_free(&c);
	mig_config_free(&d);
}

static void expect_config_error(void (*mutate)(struct mig_config *), const char *key,
				struct json_object *val, const char *want)
{
	struct gw_err err = { 0 };
	struct mig_config c, d;
	fill_config(&c);
	if (mutate)
		mutate(&c);
	struct json_object *o = mig_config_to_json(&c);
	if (key)
		json_object_object_add(o, key, val);
	assert_true(mig_config_from_json(o, &d, &err) < 0);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
	assert_null(d.agent);
	json_object_put(o);
	mig_config_free(&c);
}

static void bad_name(struct mig_config *c) { strcpy(c->name, "../etc"); }
static void bad_mac(struct mig_config *c) { strcpy(c->macs[0], "52:54:00:12:34:5g"); }
static void bad_image(struct mig_config *c) { c->image[10] = 'Z'; }
static void bad_cpus(struct mig_config *c) { c->cpus = 0; }

static void test_config_invalid(void **state)
{
	(void)state;
	expect_config_error(bad_name, NULL, NULL, "invalid container name \"../etc\"");
	expect_config_error(bad_mac, NULL, NULL, "nics[0]: missing or malformed MAC");
	expect_config_error(bad_image, NULL, NULL, "invalid image id");
	expect_config_error(bad_cpus, NULL, NULL, "cpus 0 out of range");
	expect_config_error(NULL, "memory", json_object_new_int64(-5), "\"memory\" out of range");
	expect_config_error(NULL, "memory", json_object_new_string("1G"), "\"memory\" missing");
	expect_config_error(NULL, "kind", json_object_new_string("teleport"),
			    "unknown migration kind \"teleport\"");
	struct json_object *many = json_object_new_array();
	for (int i = 0; i < 9; i++)
		json_object_array_add(many, json_object_new_object());
	expect_config_error(NULL, "nics", many, "\"nics\" has 9 entries, at most 8");
	expect_config_error(NULL, "caps", json_object_new_object(), "caps: field \"xbzrle\"");
}

static void test_prepare(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	assert_int_equal(mig_send_prepare(&cb, NULL, NULL, &err), 0);
	assert_int_equal(mig_recv_prepare(&ca, &err), 0);
	assert_int_equal(mig_send_prepare(&cb, "image-missing", "sha256:ab… missing", &err), 0);
	assert_int_equal(mig_recv_prepare(&ca, &err), -EACCES);
	assert_string_equal(err.msg, "destination refused: image-missing: sha256:ab… missing");
}

/* Send `len` pseudo-random bytes from a child as a DISK stream; corrupt = flip a byte after
 * hashing by sending a wrong sha256 in DISK_END. */
static pid_t send_child(size_t len, int corrupt)
{
	pid_t pid = fork();
	if (pid)
		return pid;
	char path[] = "/tmp/godwit-test-src-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *buf = malloc(len);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	if (write(fd, buf, len) != (ssize_t)len)
		_exit(2);
	close(fd);
	struct gw_err err = { 0 };
	int r;
	if (!corrupt) {
		r = mig_send_file(&ca, path, &err);
	} else {
		mig_send(&ca, MIG_DISK_DATA, buf, (uint32_t)len, &err);
		const char *end = "{\"size\":3000000,\"sha256\":\"00000000000000000000000000000000"
				  "00000000000000000000000000000000\"}";
		r = mig_send(&ca, MIG_DISK_END, end, (uint32_t)strlen(end), &err);
	}
	unlink(path);
	_exit(r == 0 ? 0 : 1);
}

static void test_file_stream(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	char dir[] = "/tmp/godwit-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char dst[128], tmp[140];
	snprintf(dst, sizeof(dst), "%s/overlay.qcow2", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);

	size_t len = 3 * MIG_CHUNK_SIZE + 12345;	/* several chunks and a short one */
	pid_t pid = send_child(len, 0);
	assert_int_equal(mig_recv_file(&cb, dst, 0, &err), 0);
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	ca.tx_seq = cb.rx_seq;	/* the child advanced its copy of ca */
	struct stat st;
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, len);
	cleanup_free char *data = NULL;
	size_t n;
	assert_int_equal(gw_read_file(dst, len + 1, &data, &n, &err), 0);
	for (size_t i = 0; i < n; i += 4099)
		assert_int_equal((uint8_t)data[i], (uint8_t)(i * 2654435761u >> 13));
	unlink(dst);

	/* a wrong digest: nothing is left behind, neither file nor tmp */
	pid = send_child(3000000, 1);
	assert_int_equal(mig_recv_file(&cb, dst, 0, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "DISK_END: sha256 mismatch"));
	waitpid(pid, &status, 0);
	ca.tx_seq = cb.rx_seq;
	assert_int_equal(stat(dst, &st), -1);
	assert_int_equal(stat(tmp, &st), -1);

	/* over the size limit (the child then times out writing) */
	ca.timeout_ms = 200;
	pid = send_child(3000000, 0);
	assert_int_equal(mig_recv_file(&cb, dst, 1000000, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "exceeds the limit of 1000000 bytes"));
	assert_int_equal(stat(tmp, &st), -1);
	close(sp[1]);	/* the child is blocked writing; let it fail */
	sp[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	waitpid(pid, &status, 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_header),
		cmocka_unit_test_setup_teardown(test_send_recv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_expect_and_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_roundtrip, setup, teardown),
		cmocka_unit_test(test_config_invalid),
		cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_stream, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
