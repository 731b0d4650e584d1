/* Tests for the snapshot file format (src/migproto/snapfile_*.c): round trip, streaming from a
 * pipe, a placed section written in place with holes (the sparse digest), format 1 still read,
 * and every kind of damage refused with its own message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "godwit/snapfile.h"
#include "godwit/util.h"

static char dir[64], snap[128], disk[128];
static const char config[] = "{\"name\":\"web\",\"log_pos\":1234}";

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/godwit-snap-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(snap, sizeof(snap), "%s/web.snap", dir);
	snprintf(disk, sizeof(disk), "%s/overlay.qcow2", dir);
	char buf[70000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i % 251);
	assert_int_equal(gw_write_file(disk, buf, sizeof(buf), 0600, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	gw_rm_rf(dir, NULL);
	return 0;
}

/* Write a snapshot whose STATE comes through a pipe, like QEMU's `exec:` output. */
static void write_snapshot(size_t state_len)
{
	struct gw_err err = { 0 };
	struct snap_writer *w;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (size_t i = 0; i < state_len; i++) {
			char c = (char)(i * 7);
			if (write(p[1], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, config, strlen(config), &err), 0);
	assert_int_equal(snap_add_file(w, SNAP_SEC_DISK, disk, &err), 0);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_STATE, &err), 0);
	assert_int_equal(snap_section_copy_fd(w, p[0], &err), 0);
	assert_int_equal(snap_section_end(w, &err), 0);
	assert_int_equal(snap_commit(w, &err), 0);
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_reader *r;
	write_snapshot(5000);
	struct stat st;
	assert_int_equal(stat(snap, &st), 0);
	char tmp[140];
	snprintf(tmp, sizeof(tmp), "%s.tmp", snap);
	assert_int_equal(stat(tmp, &st), -1);

	assert_int_equal(snap_open(snap, &r, &err), 0);
	const struct snap_info *in = snap_info(r);
	assert_int_equal(in->format_version, SNAP_FORMAT_VERSION);
	assert_int_equal(in->n_sections, 4);
	assert_string_equal(in->godwit_version, "0.1.0");
	assert_true(in->created_ns > 0);
	assert_int_equal(snap_find(r, SNAP_SEC_STATE)->length, 5000);
	assert_int_equal(snap_find(r, SNAP_SEC_DISK)->length, 70000);

	cleanup_free char *cfg = NULL;
	size_t n;
	assert_int_equal(snap_read_config(r, &cfg, &n, &err), 0);
	assert_string_equal(cfg, config);

	char out[140];
	snprintf(out, sizeof(out), "%s/restored.qcow2", dir);
	assert_int_equal(snap_extract_file(r, SNAP_SEC_DISK, out, &err), 0);
	cleanup_free char *a = NULL, *b = NULL;
	size_t la, lb;
	assert_int_equal(gw_read_file(disk, 1 << 20, &a, &la, &err), 0);
	assert_int_equal(gw_read_file(out, 1 << 20, &b, &lb, &err), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);

	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(snap_stream_fd(r, SNAP_SEC_STATE, p[1], &err), 0);
	close(p[1]);
	char sbuf[6000];
	ssize_t got = read(p[0], sbuf, sizeof(sbuf));
	close(p[0]);
	assert_int_equal(got, 5000);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(sbuf[i], (char)(i * 7));
	snap_close(r);
}

/* Damage the file at off with bytes, or truncate it to len when bytes is NULL. */
static void damage(off_t off, const void *bytes, size_t len)
{
	int fd = open(snap, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	if (bytes)
		assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	else
		assert_int_equal(ftruncate(fd, (off_t)len), 0);
	close(fd);
}

static void expect_open_error(int code, const char *want)
{
	struct gw_err err = { 0 };
	struct snap_reader *r = NULL;
	assert_int_equal(snap_open(snap, &r, &err), -code);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
	assert_null(r);
}

/* Offsets in the file written by write_snapshot(5000). */
#define CFG_DATA (SNAP_HDR_SIZE + SNAP_SEC_HDR_SIZE)
#define DISK_HDR (CFG_DATA + sizeof(config) - 1)
#define DISK_DATA (DISK_HDR + SNAP_SEC_HDR_SIZE)
#define STATE_HDR (DISK_DATA + 70000)
#define STATE_DATA (STATE_HDR + SNAP_SEC_HDR_SIZE)
#define FILE_END (STATE_DATA + 5000 + SNAP_SEC_HDR_SIZE)

static void test_damage(void **state)
{
	(void)state;
	char msg[200];
	write_snapshot(5000);
	damage(DISK_DATA + 100, "X", 1);
	expect_open_error(EBADMSG, "checksum mismatch in section DISK");

	write_snapshot(5000);
	damage(0, NULL, STATE_DATA + 100);
	snprintf(msg, sizeof(msg), "truncated snapshot %s: section STATE ends at byte %zu, "
		 "file has %zu", snap, (size_t)(STATE_DATA + 5000), (size_t)(STATE_DATA + 100));
	expect_open_error(EINVAL, msg);

	write_snapshot(5000);
	damage(0, NULL, FILE_END - SNAP_SEC_HDR_SIZE);	/* END missing */
	expect_open_error(EINVAL, "no END section");

	write_snapshot(5000);
	damage(15, "\x09", 1);
	expect_open_error(ENOTSUP,
			  "unsupported snapshot format version 9 (this godwit reads 1 to 2)");

	write_snapshot(5000);
	damage(3, "X", 1);
	expect_open_error(EINVAL, "not a godwit snapshot (bad magic)");

	write_snapshot(5000);
	damage(STATE_HDR + 3, "\x07", 1);	/* type 7, not skippable */
	expect_open_error(EINVAL, "unknown section type 7");
	damage(STATE_HDR + 7, "\x01", 1);	/* now skippable: but STATE is then missing */
	expect_open_error(EINVAL, "lacks a STATE section");

	write_snapshot(5000);
	damage(STATE_HDR + 3, "\x02", 1);	/* a second DISK */
	expect_open_error(EINVAL, "duplicate section DISK");

	write_snapshot(5000);
	damage(FILE_END, "junk", 4);
	expect_open_error(EINVAL, "4 bytes of garbage after the END section");

	write_snapshot(5000);
	damage(STATE_HDR + 8, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);	/* huge length */
	expect_open_error(EINVAL, "section STATE ends at byte");
}

/* PATH.tmp in a directory someone else may write: a file or a symlink planted there is
 * refused, never written through */
static void test_planted_tmp(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_writer *w;
	char tmp[140], victim[140];
	snprintf(tmp, sizeof(tmp), "%s.tmp", snap);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(gw_write_file(victim, "keep", 4, 0600, NULL), 0);
	assert_int_equal(symlink(victim, tmp), 0);
	assert_int_equal(snap_create(snap, &w, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "web.snap.tmp exists"));
	cleanup_free char *got = NULL;
	size_t n;
	assert_int_equal(gw_read_file(victim, 100, &got, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(got, "keep", 4);
	struct stat st;
	assert_int_equal(lstat(tmp, &st), 0);	/* not ours to remove */
	assert_true(S_ISLNK(st.st_mode));
	/* a dangling one too (it would create the target) */
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(symlink("/tmp/godwit-nonexistent-target", tmp), 0);
	assert_int_equal(snap_create(snap, &w, &err), -EEXIST);
	assert_int_equal(stat("/tmp/godwit-nonexistent-target", &st), -1);
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(snap_create(snap, &w, &err), 0);
	snap_discard(w);
}

static void test_failure_keeps_old(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_writer *w;
	write_snapshot(5000);
	cleanup_free char *before = NULL;
	size_t n1;
	assert_int_equal(gw_read_file(snap, 1 << 20, &before, &n1, &err), 0);

	/* a new snapshot that fails (no STATE) must leave the good one alone */
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, "{}", 2, &err), 0);
	assert_int_equal(snap_commit(w, &err), -EINVAL);
	assert_string_equal(err.msg, "snapshot: CONFIG and STATE sections are required");
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_add_file(w, SNAP_SEC_DISK, "/nonexistent/x", &err), -ENOENT);
	snap_discard(w);

	cleanup_free char *after = NULL;
	size_t n2;
	assert_int_equal(gw_read_file(snap, 1 << 20, &after, &n2, &err), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	char tmp[140];
	struct stat st;
	snprintf(tmp, sizeof(tmp), "%s.tmp", snap);
	assert_int_equal(stat(tmp, &st), -1);

	/* writer misuse is refused */
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_section_write(w, "x", 1, &err), -EINVAL);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, "{}", 2, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, "{}", 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "written twice"));
	snap_discard(w);
}

/* ---- a placed section (QEMU's mapped-ram stream) ------------------------------------------ */

#define BLK SNAP_SPARSE_BLOCK
/* STATE as QEMU might leave it: blocks of data here and there, holes between, one block
 * written but all zero, across three 16 MiB chunks, ending in a short block */
static const uint64_t state_blocks[] = { 0, 1, 2, 300, 4095, 4096, 4097, 9000, 9001 };
#define STATE_LEN (9002ull * BLK + 100)
#define ZERO_BLOCK 5000ull

static void fill_block(uint8_t *b, uint64_t idx)
{
	for (size_t i = 0; i < BLK; i++)
		b[i] = (uint8_t)(idx * 31 + i * 7 + 1);
}

/* Write STATE at off of fd, holes left as holes, or every byte written when dense. */
static void write_state(int fd, uint64_t off, int dense)
{
	static uint8_t b[BLK];
	if (dense) {
		memset(b, 0, sizeof(b));
		for (uint64_t i = 0; i * BLK < STATE_LEN; i++) {
			size_t n = STATE_LEN - i * BLK < BLK ? STATE_LEN - i * BLK : BLK;
			assert_int_equal(pwrite(fd, b, n, (off_t)(off + i * BLK)), (ssize_t)n);
		}
	}
	for (size_t k = 0; k < ARRAY_SIZE(state_blocks); k++) {
		fill_block(b, state_blocks[k]);
		assert_int_equal(pwrite(fd, b, BLK, (off_t)(off + state_blocks[k] * BLK)), BLK);
	}
	memset(b, 0, sizeof(b));
	assert_int_equal(pwrite(fd, b, BLK, (off_t)(off + ZERO_BLOCK * BLK)), BLK);
	fill_block(b, 9002);
	assert_int_equal(pwrite(fd, b, 100, (off_t)(off + 9002 * BLK)), 100);
}

/* A snapshot whose STATE is placed and written "by QEMU" through its own descriptor. */
static void write_placed(const char *path, int dense, uint8_t state_dig[32])
{
	struct gw_err err = { 0 };
	struct snap_writer *w;
	uint64_t off;
	assert_int_equal(snap_create(path, &w, &err), 0);
	assert_int_equal(snap_section_place(w, SNAP_SEC_STATE, &off, &err), 0);
	assert_int_equal(off % SNAP_PLACE_ALIGN, 0);
	/* nothing else until it is adopted */
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, "{}", 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "section STATE still open"));
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", snap_writer_fd(w));
	int q = open(self, O_WRONLY | O_CLOEXEC);
	assert_true(q >= 0);
	assert_int_equal(ftruncate(q, (off_t)off), 0);	/* what QEMU's file: URI does */
	write_state(q, off, dense);
	close(q);
	assert_int_equal(snap_section_adopt(w, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, config, strlen(config), &err), 0);
	assert_int_equal(snap_add_file(w, SNAP_SEC_DISK, disk, &err), 0);
	assert_int_equal(snap_commit(w, &err), 0);

	struct snap_reader *r;
	assert_int_equal(snap_open(path, &r, &err), 0);
	const struct snap_section *st = snap_find(r, SNAP_SEC_STATE);
	assert_int_equal(st->offset, off);
	assert_int_equal(st->length, STATE_LEN);
	assert_int_equal(st->flags, SNAP_FLAG_SPARSE);
	assert_int_equal(snap_find(r, SNAP_SEC_PAD)->offset + snap_find(r, SNAP_SEC_PAD)->length +
			 SNAP_SEC_HDR_SIZE, off);
	memcpy(state_dig, st->sha256, 32);
	snap_close(r);
}

static void test_placed(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_reader *r;
	uint8_t sparse_dig[32], dense_dig[32];
	write_placed(snap, 0, sparse_dig);
	struct stat st;
	assert_int_equal(stat(snap, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < STATE_LEN / 4);	/* the holes stayed holes */

	/* the digest does not depend on where the holes are: zeros written read the same */
	char dense[140];
	snprintf(dense, sizeof(dense), "%s/dense.snap", dir);
	write_placed(dense, 1, dense_dig);
	assert_memory_equal(sparse_dig, dense_dig, 32);

	/* streaming reads every byte (holes as zeros) and checks the digest the other way */
	assert_int_equal(snap_open(snap, &r, &err), 0);
	const struct snap_section *ss = snap_find(r, SNAP_SEC_STATE);
	uint64_t off = ss->offset;
	char out[140];
	snprintf(out, sizeof(out), "%s/state.out", dir);
	assert_int_equal(snap_extract_file(r, SNAP_SEC_STATE, out, &err), 0);
	assert_int_equal(snap_verify_section(r, SNAP_SEC_STATE, &err), 0);
	assert_int_equal(snap_reader_fd(r) >= 0, 1);
	snap_close(r);
	int fd = open(out, O_RDONLY | O_CLOEXEC);
	static uint8_t got[BLK], want[BLK];
	fill_block(want, 4096);
	assert_int_equal(pread(fd, got, BLK, 4096 * BLK), BLK);
	assert_memory_equal(got, want, BLK);
	memset(want, 0, BLK);
	assert_int_equal(pread(fd, got, BLK, 4100 * BLK), BLK);
	assert_memory_equal(got, want, BLK);
	close(fd);

	/* a zero written into a hole changes nothing; anything else is damage, found whether it
	 * lands in a hole, in data or in the zero block */
	damage((off_t)(off + 7000 * BLK + 5), "\0", 1);
	assert_int_equal(snap_open(snap, &r, &err), 0);
	snap_close(r);
	damage((off_t)(off + 7000 * BLK + 5), "\1", 1);
	expect_open_error(EBADMSG, "checksum mismatch in section STATE");
	write_placed(snap, 0, sparse_dig);
	damage((off_t)(off + ZERO_BLOCK * BLK + BLK - 1), "\1", 1);
	expect_open_error(EBADMSG, "checksum mismatch in section STATE");
	write_placed(snap, 0, sparse_dig);
	damage((off_t)(off + 9001 * BLK), "\0", 1);
	expect_open_error(EBADMSG, "checksum mismatch in section STATE");

	/* deferred: the file opens, the section is checked on demand */
	assert_int_equal(snap_open_ex(snap, 1u << SNAP_SEC_STATE, &r, &err), 0);
	assert_int_equal(snap_verify_section(r, SNAP_SEC_STATE, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "checksum mismatch in section STATE"));
	snap_close(r);
	damage((off_t)(off + 9001 * BLK), "\xf8", 1);	/* fill_block(9001)[0] */
	assert_int_equal(snap_open_ex(snap, 1u << SNAP_SEC_STATE, &r, &err), 0);
	assert_int_equal(snap_verify_section(r, SNAP_SEC_STATE, &err), 0);
	snap_close(r);
}

static void test_placed_misuse(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_writer *w;
	uint64_t off;
	/* commit before adopt, adopt twice, a second placed section */
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_section_adopt(w, &err), -EINVAL);
	assert_int_equal(snap_section_place(w, SNAP_SEC_STATE, &off, &err), 0);
	assert_int_equal(snap_commit(w, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "section STATE still open"));
	char tmp[140];
	struct stat st;
	snprintf(tmp, sizeof(tmp), "%s.tmp", snap);
	assert_int_equal(stat(tmp, &st), -1);

	/* given up while the background work runs: it is waited for, nothing is left */
	assert_int_equal(snap_create(snap, &w, &err), 0);
	assert_int_equal(snap_section_place(w, SNAP_SEC_STATE, &off, &err), 0);
	write_state(snap_writer_fd(w), off, 0);
	assert_int_equal(snap_section_adopt(w, &err), 0);
	assert_int_equal(snap_section_adopt(w, &err), -EINVAL);
	assert_int_equal(snap_section_place(w, SNAP_SEC_DISK, &off, &err), -EINVAL);
	snap_discard(w);
	assert_int_equal(stat(tmp, &st), -1);
	assert_int_equal(stat(snap, &st), -1);
}

/* Format 1 files (plain digests, no PAD, STATE a plain stream) are still read. */
static void test_format1(void **state)
{
	(void)state;
	struct gw_err err = { 0 };
	struct snap_reader *r;
	write_snapshot(5000);
	damage(15, "\x01", 1);
	assert_int_equal(snap_open(snap, &r, &err), 0);
	assert_int_equal(snap_info(r)->format_version, 1);
	assert_int_equal(snap_verify_section(r, SNAP_SEC_STATE, &err), 0);
	snap_close(r);

	/* a sparse digest is format 2's, and only STATE's */
	uint8_t dig[32];
	write_placed(snap, 0, dig);
	damage(15, "\x01", 1);
	expect_open_error(EINVAL, "section STATE at byte 4048 has unknown flags 0x2");
	write_snapshot(5000);
	damage(SNAP_HDR_SIZE + 7, "\x02", 1);
	expect_open_error(EINVAL, "section CONFIG at byte 56 has unknown flags 0x2");
}

/* A snapshot with a key (snap_set_key) and what snap_check_mac says of it. */
static void write_keyed(const uint8_t *key)
{
	struct gw_err err = { 0 };
	struct snap_writer *w;
	assert_int_equal(snap_create(snap, &w, &err), 0);
	if (key)
		assert_int_equal(snap_set_key(w, key, 40, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_CONFIG, config, strlen(config), &err), 0);
	assert_int_equal(snap_add_file(w, SNAP_SEC_DISK, disk, &err), 0);
	assert_int_equal(snap_add_buffer(w, SNAP_SEC_STATE, "state", 5, &err), 0);
	assert_int_equal(snap_commit(w, &err), 0);
}

static int mac_says(const uint8_t *key, char *msg, size_t len)
{
	struct gw_err err = { 0 };
	struct snap_reader *r = NULL;
	assert_int_equal(snap_open(snap, &r, &err), 0);
	int ret = snap_check_mac(r, key, 40, &err);
	snprintf(msg, len, "%s", err.msg);
	snap_close(r);
	return ret;
}

/* The HMAC: made with the key, checked with it; another key, no MAC, and a change whose
 * digest was fixed up (what an unkeyed digest cannot catch) are refused; a reader without a
 * key takes the file (older godwits skip the section: SKIPPABLE); the key file's rules. */
static void test_mac(void **state)
{
	(void)state;
	uint8_t key[40], other[40];
	char msg[GW_ERR_MSG_MAX];
	memset(key, 'k', sizeof(key));
	memset(other, 'o', sizeof(other));
	write_keyed(key);
	assert_int_equal(mac_says(key, msg, sizeof(msg)), 0);
	assert_int_equal(mac_says(NULL, msg, sizeof(msg)), 0);
	assert_int_equal(mac_says(other, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "does not match this host's snapshot key"));
	/* CONFIG changed, its digest recomputed: every digest holds, the MAC does not */
	char forged[sizeof(config)];
	memcpy(forged, config, sizeof(config));
	forged[9] = 'X';
	uint8_t dig[32];
	EVP_Digest(forged, strlen(forged), dig, NULL, EVP_sha256(), NULL);
	damage(SNAP_HDR_SIZE + SNAP_SEC_HDR_SIZE, forged, strlen(forged));
	damage(SNAP_HDR_SIZE + 16, dig, 32);
	assert_int_equal(mac_says(key, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "does not match"));
	/* without a key the file carries no MAC, which a keyed host refuses */
	write_keyed(NULL);
	assert_int_equal(mac_says(key, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "carries no HMAC"));
	/* the key file: this user's, 0600, 32 bytes at least */
	char kf[160];
	uint8_t got[SNAP_KEY_MAX];
	size_t len;
	struct gw_err err = { 0 };
	snprintf(kf, sizeof(kf), "%s/key", dir);
	assert_int_equal(gw_write_file(kf, key, sizeof(key), 0644, NULL), 0);
	assert_int_equal(snap_key_load(kf, got, &len, &err), -EPERM);
	assert_non_null(strstr(err.msg, "chmod 600"));
	assert_int_equal(chmod(kf, 0600), 0);
	assert_int_equal(snap_key_load(kf, got, &len, &err), 0);
	assert_int_equal(len, sizeof(key));
	assert_memory_equal(got, key, sizeof(key));
	assert_int_equal(gw_write_file(kf, key, 10, 0600, NULL), 0);
	assert_int_equal(snap_key_load(kf, got, &len, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at least 32"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_keeps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placed_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mac, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
