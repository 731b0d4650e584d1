/* Unit tests for a migrated agent link's restore (src/shim/agent_link.c, alink_hold and
 * alink_restore; docs/agent-protocol.md section 4): the destination's shim holds what the
 * guest's agent sends, then restores the source's saved link. A stream that goes on whole is
 * logged with no RESYNC; one torn at the switch (the source's shim read a frame's head, the
 * destination gets its tail, then later frames) gets a RESYNC at once, and after the agent's
 * HELLO and resend the log has every line exactly once, in order. The agent is played by a
 * gw_link on the far end of the port's socket. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/sockios.h>

#include "godwit/frame.h"
#include "godwit/util.h"
#include "../../src/shim/shim.h"
#include "link_testlib.h"

static const char *lines[] = { "line-one", "line-two-torn", "line-three", "line-four" };

/* Read whatever comes on fd within ms into the agent's link. */
static void agent_take(struct gw_link *agent, int fd, int ms)
{
	struct gw_err err = { 0 };
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, ms) > 0 && gw_link_read(agent, fd, &err) > 0)
		ms = 20;
}

/* The shim's link in the state the source saved: line-one received, and the head (header and
 * two bytes) of line-two-torn when torn. raw holds the agent's frames 2..4 as sent. */
static size_t source_state(struct gw_link *agent, int torn, uint8_t *raw, size_t cap,
			   uint8_t **saved, size_t *saved_len, size_t *head)
{
	struct gw_link src;
	struct gw_err err = { 0 };
	struct gw_frame f;
	size_t n;

	gw_link_init(&src);
	for (int i = 0; i < 4; i++)
		assert_int_equal(gw_link_send(agent, GW_FRAME_STDOUT, 0, lines[i],
					      strlen(lines[i]), &err), 0);
	n = drain_raw(agent, raw, cap);
	size_t one = GW_FRAME_HDR_LEN + strlen(lines[0]);
	*head = one + (torn ? GW_FRAME_HDR_LEN + 2 : 0);
	assert_int_equal(gw_link_feed(&src, raw, *head, &err), 0);
	assert_int_equal(gw_link_next(&src, &f), 1);
	gw_frame_free(&f);
	assert_int_equal(src.last_recv, 1);
	assert_int_equal(gw_link_save(&src, saved, saved_len, &err), 0);
	gw_link_free(&src);
	memmove(raw, raw + *head, n - *head);
	return n - *head;
}

static void restore_case(int torn)
{
	char dir[] = "/tmp/gw-alink-XXXXXX", path[64], log[64];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct container ct;
	struct gw_link agent;
	struct gw_err err = { 0 };
	struct gw_frame f;
	uint8_t raw[1024], *saved;
	size_t n, saved_len, head;
	int lfd, afd, resyncs = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	snprintf(log, sizeof(log), "%s/output.log", dir);
	strcpy(a.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	memset(&ct, 0, sizeof(ct));
	strcpy(ct.cfg.name, "restore");
	ct.agent_path = path;
	ct.log_path = log;
	ct.log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ct.console_log_fd = -1;
	for (size_t i = 0; i < sizeof(ct.stdio_fd) / sizeof(ct.stdio_fd[0]); i++)
		ct.stdio_fd[i] = -1; /* no runtime's stdio to pass output to */
	assert_true(ct.log_fd >= 0);
	gw_link_init(&agent);
	n = source_state(&agent, torn, raw, sizeof(raw), &saved, &saved_len, &head);

	/* the destination: hold the port, the guest runs on and sends what follows */
	assert_int_equal(alink_hold(&ct, &err), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(write(afd, raw, n), (ssize_t)n);
	/* until the hold thread has read it all (what it has not is read live later: another
	 * path, tested by the stream alone in test_frame) */
	int unread = 1;
	for (int i = 0; i < 500 && unread; i++) {
		assert_int_equal(ioctl(afd, SIOCOUTQ, &unread), 0);
		if (unread)
			usleep(10000);
	}
	assert_int_equal(unread, 0);
	assert_int_equal(alink_restore(&ct, saved, saved_len, false, NULL, &err), 0);
	free(saved);

	/* the agent's side: a RESYNC only for the torn stream; it answers HELLO and resends */
	agent_take(&agent, afd, 200);
	while (gw_link_next(&agent, &f) > 0) {
		uint32_t last, next;
		if (f.hdr.type == GW_FRAME_RESYNC) {
			resyncs++;
			assert_int_equal(gw_link_parse_sync(&f, &last, &next, &err), 0);
			assert_int_equal(last, 1);
			assert_int_equal(gw_link_peer_reset(&agent, last, GW_FRAME_HELLO, &err), 3);
		}
		gw_frame_free(&f);
	}
	assert_int_equal(resyncs, torn);
	assert_int_equal(gw_link_flush(&agent, afd, &err), 0);
	for (int i = 0; i < 10; i++) {
		struct pollfd p = { .fd = alink_fd(&ct), .events = POLLIN };
		if (poll(&p, 1, 50) > 0)
			alink_on_readable(&ct);
	}

	/* the log: lines two to four, each once and in order (line one is the source's) */
	cleanup_free char *txt = NULL;
	size_t len = 0;
	assert_int_equal(gw_read_file(log, 1 << 20, &txt, &len, &err), 0);
	const char *at = txt;
	assert_null(strstr(txt, lines[0]));
	for (int i = 1; i < 4; i++) {
		const char *hit = strstr(at, lines[i]);
		assert_non_null(hit);
		assert_null(strstr(hit + 1, lines[i]));
		at = hit;
	}

	alink_close(&ct);
	close(afd);
	close(lfd);
	close(ct.log_fd);
	gw_link_free(&agent);
	unlink(path);
	unlink(log);
	rmdir(dir);
}

static void test_whole_stream_no_resync(void **state)
{
	(void)state;
	restore_case(0);
}

static void test_torn_stream_resync(void **state)
{
	(void)state;
	restore_case(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_stream_no_resync),
		cmocka_unit_test(test_torn_stream_resync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
