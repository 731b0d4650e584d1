/* Tests for the snapshot file format (src/migrate/snapfile.c): round trip, streaming from a
 * pipe, and every kind of damage refused with its own message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
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
	assert_int_equal(in->format_version, 1);
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
	expect_open_error(ENOTSUP, "unsupported snapshot format version 9 (this godwit reads 1)");

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_keeps_old, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
