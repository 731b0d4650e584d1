/* Unit tests for src/common/frame.c and link.c: header codec and validation, the incremental reader with
 * the stream split at every offset, duplicate dropping, acks, retransmission after a resync,
 * back-pressure bounds, and save/load of the link state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "godwit/frame.h"
#include "link_testlib.h"

/* Move everything a has queued for writing into b, through a pipe (real fd I/O). */
static void pump(struct gw_link *a, struct gw_link *b)
{
	struct gw_err err = { 0 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(gw_link_flush(a, p[1], &err), 0);
	close(p[1]);
	while (gw_link_read(b, p[0], &err) > 0)
		;
	close(p[0]);
}

static void test_hdr_roundtrip(void **state)
{
	struct gw_frame_hdr h = { GW_FRAME_STDOUT, 3, 42, 41, 1000 }, d;
	uint8_t buf[GW_FRAME_HDR_LEN];
	struct gw_err err = { 0 };

	(void)state;
	gw_frame_hdr_encode(&h, buf);
	assert_memory_equal(buf, "GWA1\0\6\0\3", 8);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), 0);
	assert_int_equal(d.type, GW_FRAME_STDOUT);
	assert_int_equal(d.chan, 3);
	assert_int_equal(d.seq, 42);
	assert_int_equal(d.ack, 41);
	assert_int_equal(d.len, 1000);
}

static void test_hdr_rejects(void **state)
{
	struct gw_frame_hdr h = { GW_FRAME_STDOUT, 0, 1, 0, GW_FRAME_MAX + 1 }, d;
	uint8_t buf[GW_FRAME_HDR_LEN];
	struct gw_err err = { 0 };

	(void)state;
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "exceeds"));
	h.len = GW_FRAME_MAX;
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), 0);
	h.type = 99;
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	h.type = GW_FRAME_SHUTDOWN;	/* the newest numbered type is known, the next one is not */
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), 0);
	assert_string_equal(gw_frame_type_name(GW_FRAME_ACK), "ACK");
	h.type = 16;	/* once TLBFLUSH: refused */
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	h.type = GW_FRAME_ANSWER;	/* the newest */
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), 0);
	h.type = GW_FRAME_TYPE_MAX + 1;
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	h.type = GW_FRAME_ACK;	/* ACK must have seq 0 */
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	h.type = GW_FRAME_EXIT;
	h.seq = 0;		/* numbered types must not */
	gw_frame_hdr_encode(&h, buf);
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	h.seq = 1;
	gw_frame_hdr_encode(&h, buf);
	buf[0] = 'X';
	assert_int_equal(gw_frame_hdr_decode(buf, &d, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "magic"));
}

/* Three frames, fed split at every pair of offsets, always decode to the same three. */
static void test_reader_split_anywhere(void **state)
{
	struct gw_link tx;
	struct gw_err err = { 0 };
	struct gw_frame f;
	size_t total, used;

	(void)state;
	gw_link_init(&tx);
	assert_int_equal(gw_link_send(&tx, GW_FRAME_STDOUT, 0, "hello", 5, &err), 0);
	assert_int_equal(gw_link_send(&tx, GW_FRAME_EXIT, 0, "{\"status\":7}", 12, &err), 0);
	assert_int_equal(gw_link_send(&tx, GW_FRAME_ACK, 0, NULL, 0, &err), 0);
	total = tx.out_len;
	assert_int_equal(total, 3 * GW_FRAME_HDR_LEN + 17);
	for (size_t a = 0; a <= total; a++) {
		for (size_t b = a; b <= total; b++) {
			struct gw_frame_reader r;
			size_t cuts[] = { 0, a, b, total }, got = 0;

			gw_frame_reader_init(&r);
			for (int c = 0; c < 3; c++) {
				const uint8_t *p = tx.out + cuts[c];
				size_t len = cuts[c + 1] - cuts[c];
				int ret;

				while ((ret = gw_frame_reader_feed(&r, p, len, &used, &f, &err)) == 1) {
					if (got == 0)
						assert_memory_equal(f.payload, "hello", 6);
					if (got == 1) {
						assert_int_equal(f.hdr.type, GW_FRAME_EXIT);
						assert_int_equal(f.hdr.seq, 2);
					}
					if (got == 2)
						assert_null(f.payload);
					got++;
					gw_frame_free(&f);
					p += used;
					len -= used;
				}
				assert_int_equal(ret, 0);
				assert_int_equal(used, len);
			}
			assert_int_equal(got, 3);
			gw_frame_reader_free(&r);
		}
	}
	gw_link_free(&tx);
}

static void test_reader_bad_and_hunt(void **state)
{
	struct gw_frame_reader r;
	struct gw_link tx;
	struct gw_err err = { 0 };
	struct gw_frame f;
	uint8_t buf[256];
	size_t used, n;

	(void)state;
	gw_link_init(&tx);
	assert_int_equal(gw_link_send(&tx, GW_FRAME_PING, 0, "{\"t\":1}", 7, &err), 0);
	memcpy(buf, "garbage!!", 9);
	memcpy(buf + 9, tx.out, tx.out_len);
	n = 9 + tx.out_len;
	gw_frame_reader_init(&r);
	assert_int_equal(gw_frame_reader_feed(&r, buf, n, &used, &f, &err), -EPROTO);
	gw_frame_reader_free(&r);
	r.hunt = true;
	assert_int_equal(gw_frame_reader_feed(&r, buf, n, &used, &f, &err), 1);
	assert_int_equal(used, n);
	assert_int_equal(f.hdr.type, GW_FRAME_PING);
	gw_frame_free(&f);
	gw_frame_reader_free(&r);
	gw_link_free(&tx);
}

static void test_json_payload(void **state)
{
	struct gw_frame f = { .hdr = { .type = GW_FRAME_EXIT } };
	struct json_object *o;
	struct gw_err err = { 0 };
	char good[] = "{\"status\":7}", bad[] = "{\"status\":7} x", arr[] = "[1]";

	(void)state;
	f.payload = (uint8_t *)good;
	f.hdr.len = strlen(good);
	assert_int_equal(gw_frame_json(&f, &o, &err), 0);
	json_object_put(o);
	f.payload = (uint8_t *)bad;
	f.hdr.len = strlen(bad);
	assert_int_equal(gw_frame_json(&f, &o, &err), -EPROTO);
	f.payload = (uint8_t *)arr;
	f.hdr.len = strlen(arr);
	assert_int_equal(gw_frame_json(&f, &o, &err), -EPROTO);
}

static void test_ack_and_duplicates(void **state)
{
	struct gw_link a, b;
	struct gw_err err = { 0 };
	struct gw_frame f;
	uint8_t copy[4096];
	size_t copy_len;

	(void)state;
	gw_link_init(&a);
	gw_link_init(&b);
	for (int i = 0; i < 3; i++)
		assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, "x", 1, &err), 0);
	assert_int_equal(a.n_unacked, 3);
	copy_len = a.out_len;
	memcpy(copy, a.out, copy_len);
	pump(&a, &b);
	assert_int_equal(b.last_recv, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(gw_link_next(&b, &f), 1);
		assert_int_equal(f.hdr.seq, i + 1);
		gw_frame_free(&f);
	}
	assert_int_equal(gw_link_next(&b, &f), 0);
	/* The same bytes again (a retransmit): all dropped. */
	assert_int_equal(gw_link_feed(&b, copy, copy_len, &err), 0);
	assert_int_equal(gw_link_next(&b, &f), 0);
	assert_int_equal(b.dropped_dups, 3);
	/* b owes an ACK; it releases a's queue. */
	assert_true(gw_link_want_write(&b));
	pump(&b, &a);
	assert_int_equal(a.n_unacked, 0);
	assert_int_equal(a.unacked_bytes, 0);
	assert_int_equal(gw_link_next(&a, &f), 0);	/* the ACK is not delivered */
	assert_false(gw_link_want_write(&a));		/* and is not acknowledged */
	assert_false(gw_link_want_write(&b));
	gw_link_free(&a);
	gw_link_free(&b);
}

static void test_backpressure(void **state)
{
	struct gw_link a;
	struct gw_err err = { 0 };
	static uint8_t big[GW_FRAME_MAX + 1];
	int n = 0;

	(void)state;
	gw_link_init(&a);
	assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, big, sizeof(big), &err), -EMSGSIZE);
	while (gw_link_can_send(&a, GW_FRAME_MAX)) {
		assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, big, GW_FRAME_MAX, &err), 0);
		n++;
	}
	assert_true(n > 0 && n <= (int)(GW_LINK_UNACKED_BYTES / GW_FRAME_MAX));
	assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, big, GW_FRAME_MAX, &err), -EAGAIN);
	assert_true(a.unacked_bytes <= GW_LINK_UNACKED_BYTES);
	/* Unnumbered frames still go out (they are not queued). */
	assert_int_equal(gw_link_send(&a, GW_FRAME_ACK, 0, NULL, 0, &err), 0);
	gw_link_process_ack(&a, 1);
	assert_true(gw_link_can_send(&a, GW_FRAME_MAX));
	gw_link_free(&a);
}

/* A shim saves the link mid-stream, a new shim loads it; RESYNC/HELLO retransmit exactly the
 * frames each side lacks: no loss, no repeat. */
static void test_save_load_resync(void **state)
{
	struct gw_link agent, shim, shim2;
	struct gw_err err = { 0 };
	struct gw_frame f;
	uint8_t *saved;
	size_t saved_len;
	uint32_t last, next;
	int got[8] = { 0 };

	(void)state;
	gw_link_init(&agent);
	gw_link_init(&shim);
	gw_link_init(&shim2);
	assert_int_equal(gw_link_send(&shim, GW_FRAME_START, 0, "{}", 2, &err), 0);
	pump(&shim, &agent);
	assert_int_equal(gw_link_next(&agent, &f), 1);
	gw_frame_free(&f);
	/* Agent sends out 1..2; the shim gets them; the agent then sends 3..4 that are lost. */
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "1", 1, &err), 0);
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "2", 1, &err), 0);
	pump(&agent, &shim);
	while (gw_link_next(&shim, &f) > 0) {
		got[f.payload[0] - '0']++;
		gw_frame_free(&f);
	}
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "3", 1, &err), 0);
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "4", 1, &err), 0);
	gw_link_reset_io(&agent);	/* lost in flight */
	/* The shim had queued a SIGNAL the agent never saw. */
	assert_int_equal(gw_link_send(&shim, GW_FRAME_SIGNAL, 0, "{\"signal\":15}", 13, &err), 0);
	assert_int_equal(gw_link_save(&shim, &saved, &saved_len, &err), 0);
	assert_int_equal(gw_link_load(&shim2, saved, saved_len, &err), 0);
	free(saved);
	assert_int_equal(shim2.last_recv, 2);
	assert_int_equal(shim2.next_seq, 3);
	assert_int_equal(shim2.n_unacked, 1);	/* START was acked by the agent's frames */
	/* New shim: RESYNC; the agent answers HELLO + 3, 4. */
	assert_int_equal(gw_link_send_sync(&shim2, GW_FRAME_RESYNC, &err), 0);
	pump(&shim2, &agent);
	assert_int_equal(gw_link_next(&agent, &f), 1);
	assert_int_equal(f.hdr.type, GW_FRAME_RESYNC);
	assert_int_equal(gw_link_parse_sync(&f, &last, &next, &err), 0);
	gw_frame_free(&f);
	assert_int_equal(gw_link_peer_reset(&agent, last, GW_FRAME_HELLO, &err), 2);
	pump(&agent, &shim2);
	assert_int_equal(gw_link_next(&shim2, &f), 1);
	assert_int_equal(f.hdr.type, GW_FRAME_HELLO);
	assert_int_equal(gw_link_parse_sync(&f, &last, &next, &err), 0);
	gw_frame_free(&f);
	assert_int_equal(gw_link_peer_reset(&shim2, last, 0, &err), 1);	/* the SIGNAL */
	while (gw_link_next(&shim2, &f) > 0) {
		got[f.payload[0] - '0']++;
		gw_frame_free(&f);
	}
	assert_int_equal(got[1], 1);
	assert_int_equal(got[2], 1);
	assert_int_equal(got[3], 1);
	assert_int_equal(got[4], 1);
	pump(&shim2, &agent);
	assert_int_equal(gw_link_next(&agent, &f), 1);
	assert_int_equal(f.hdr.type, GW_FRAME_SIGNAL);
	gw_frame_free(&f);
	assert_int_equal(agent.n_unacked, 0);	/* the SIGNAL carried ack 4 */
	gw_link_free(&agent);
	gw_link_free(&shim);
	gw_link_free(&shim2);
}

/* A migrated link restored without a RESYNC (in-order mode): a stream that goes on whole is
 * taken as is and shows no loss; one torn at the switch (the source's shim got a frame's head,
 * the destination gets its tail) shows the loss, takes nothing out of order, and after
 * RESYNC/HELLO has every frame exactly once, in order. */
static void test_migrated_in_order(void **state)
{
	struct gw_link agent, shim, shim2;
	struct gw_err err = { 0 };
	struct gw_frame f;
	uint8_t raw[512], *saved;
	size_t n, saved_len;
	uint32_t last, next;
	char seen[16] = "";

	(void)state;
	for (int torn = 0; torn <= 1; torn++) {
		gw_link_init(&agent);
		gw_link_init(&shim);
		gw_link_init(&shim2);
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "1", 1, &err), 0);
		pump(&agent, &shim);
		assert_int_equal(gw_link_next(&shim, &f), 1);
		gw_frame_free(&f);
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "2222", 4, &err), 0);
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "3", 1, &err), 0);
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "4", 1, &err), 0);
		n = drain_raw(&agent, raw, sizeof(raw));
		assert_int_equal(n, 3 * GW_FRAME_HDR_LEN + 6);
		/* the source's shim: nothing of frame 2, or its header and two bytes */
		size_t head = torn ? GW_FRAME_HDR_LEN + 2 : 0;
		assert_int_equal(gw_link_feed(&shim, raw, head, &err), 0);
		assert_int_equal(gw_link_next(&shim, &f), 0);
		assert_int_equal(gw_link_save(&shim, &saved, &saved_len, &err), 0);
		assert_int_equal(gw_link_load(&shim2, saved, saved_len, &err), 0);
		free(saved);
		gw_link_set_in_order(&shim2, true);
		assert_int_equal(gw_link_feed(&shim2, raw + head, n - head, &err), 0);
		seen[0] = 0;
		while (gw_link_next(&shim2, &f) > 0) {
			strncat(seen, (char *)f.payload, 1);
			gw_frame_free(&f);
		}
		if (!torn) {
			assert_false(gw_link_lost_some(&shim2));
			assert_string_equal(seen, "234");
		} else {
			assert_true(gw_link_lost_some(&shim2));
			assert_int_equal(shim2.rd.skipped, 2);
			assert_int_equal(shim2.gaps, 2); /* 3 and 4: not taken before 2 */
			assert_string_equal(seen, "");
			assert_int_equal(shim2.last_recv, 1);
			/* RESYNC: the agent answers HELLO and resends 2, 3, 4 */
			assert_int_equal(gw_link_send_sync(&shim2, GW_FRAME_RESYNC, &err), 0);
			pump(&shim2, &agent);
			assert_int_equal(gw_link_next(&agent, &f), 1);
			assert_int_equal(gw_link_parse_sync(&f, &last, &next, &err), 0);
			gw_frame_free(&f);
			assert_int_equal(gw_link_peer_reset(&agent, last, GW_FRAME_HELLO, &err), 3);
			pump(&agent, &shim2);
			assert_int_equal(gw_link_next(&shim2, &f), 1);
			assert_int_equal(f.hdr.type, GW_FRAME_HELLO);
			gw_frame_free(&f);
			while (gw_link_next(&shim2, &f) > 0) {
				strncat(seen, (char *)f.payload, 1);
				gw_frame_free(&f);
			}
			assert_string_equal(seen, "234");
		}
		gw_link_free(&agent);
		gw_link_free(&shim);
		gw_link_free(&shim2);
	}
}

/* A snapshot restored twice: the agent's numbering is behind the shim's last_recv. */
static void test_resync_diverged(void **state)
{
	struct gw_link agent, shim;
	struct gw_err err = { 0 };
	struct gw_frame f;

	(void)state;
	gw_link_init(&agent);
	gw_link_init(&shim);
	shim.last_recv = 10;	/* saw 10 frames of a previous run */
	agent.next_seq = 4;
	agent.last_recv = 0;
	shim.next_seq = 1;
	assert_int_equal(gw_link_send_sync(&agent, GW_FRAME_HELLO, &err), 0);
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "n", 1, &err), 0);
	pump(&agent, &shim);
	assert_int_equal(gw_link_next(&shim, &f), 1);
	assert_int_equal(f.hdr.type, GW_FRAME_HELLO);
	gw_frame_free(&f);
	assert_int_equal(gw_link_peer_reset(&shim, agent.last_recv, 0, &err), 0);
	assert_int_equal(gw_link_next(&shim, &f), 1);	/* accepted, not a "duplicate" */
	assert_int_equal(f.hdr.seq, 4);
	gw_frame_free(&f);
	assert_int_equal(shim.last_recv, 4);
	/* And the other way: the peer acknowledges more than we sent. */
	assert_int_equal(gw_link_peer_reset(&agent, 20, 0, &err), 0);
	assert_int_equal(agent.next_seq, 21);
	assert_int_equal(agent.n_unacked, 0);
	gw_link_free(&agent);
	gw_link_free(&shim);
}

/* A restored agent's HELLO and its next frame arrive in one read: the frame after the HELLO
 * must not make the agent look older than the shim (last_recv lowered below a frame already
 * delivered, which the next restore then delivers again). */
static void test_hello_then_frame_one_read(void **state)
{
	struct gw_link agent, shim;
	struct gw_err err = { 0 };
	struct gw_frame f;
	int n = 0;

	(void)state;
	gw_link_init(&agent);
	gw_link_init(&shim);
	agent.next_seq = 25;	/* sent 1..24, all of which the shim has */
	shim.last_recv = 24;
	assert_int_equal(gw_link_send_sync(&agent, GW_FRAME_HELLO, &err), 0);
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "13", 2, &err), 0);
	pump(&agent, &shim);	/* one chunk: HELLO(next 25), STDOUT 25 */
	while (gw_link_next(&shim, &f) > 0) {
		if (f.hdr.type == GW_FRAME_HELLO)
			assert_int_equal(gw_link_peer_reset(&shim, 24, 0, &err), 0);
		else
			n++;
		gw_frame_free(&f);
	}
	assert_int_equal(n, 1);
	assert_int_equal(shim.last_recv, 25);	/* what the shim logged is what it saves */
	/* the agent resends 25 (say after a RESYNC): a duplicate, dropped */
	gw_link_reset_io(&agent);
	assert_int_equal(gw_link_peer_reset(&agent, 24, GW_FRAME_HELLO, &err), 1);
	pump(&agent, &shim);
	while (gw_link_next(&shim, &f) > 0) {
		assert_int_equal(f.hdr.type, GW_FRAME_HELLO);
		gw_frame_free(&f);
	}
	assert_int_equal(shim.dropped_dups, 1);
	gw_link_free(&agent);
	gw_link_free(&shim);
}

static void test_load_rejects(void **state)
{
	struct gw_link a, b;
	struct gw_err err = { 0 };
	uint8_t *buf;
	size_t len;

	(void)state;
	gw_link_init(&a);
	gw_link_init(&b);
	assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, "abc", 3, &err), 0);
	assert_int_equal(gw_link_send(&a, GW_FRAME_STDOUT, 0, "def", 3, &err), 0);
	assert_int_equal(gw_link_save(&a, &buf, &len, &err), 0);
	assert_int_equal(gw_link_load(&b, buf, len - 1, &err), -EINVAL);	/* truncated */
	assert_int_equal(gw_link_load(&b, buf, 10, &err), -EINVAL);
	buf[4 + 3] = 2;		/* next_seq 2 but frames 1, 2 */
	assert_int_equal(gw_link_load(&b, buf, len, &err), -EINVAL);
	buf[4 + 3] = 3;
	buf[16 + GW_FRAME_HDR_LEN + 3 + 11] = 1;	/* second frame seq 1: not increasing */
	assert_int_equal(gw_link_load(&b, buf, len, &err), -EINVAL);
	assert_int_equal(b.n_unacked, 0);
	buf[16 + GW_FRAME_HDR_LEN + 3 + 11] = 2;
	assert_int_equal(gw_link_load(&b, buf, len, &err), 0);
	assert_int_equal(b.n_unacked, 2);
	free(buf);
	gw_link_free(&a);
	gw_link_free(&b);
}

/* A lazy acknowledger (the shim) acks output once GW_LINK_LAZY_ACK_FRAMES are owed or when
 * told to, anything else at once; the sender's queue empties when the ack comes. */
static void deliver(struct gw_link *from, struct gw_link *to)
{
	struct gw_frame f;

	pump(from, to);
	while (gw_link_next(to, &f) > 0)
		gw_frame_free(&f);
}

static void test_lazy_ack(void **state)
{
	struct gw_link agent, shim;
	struct gw_err err = { 0 };

	(void)state;
	gw_link_init(&agent);
	gw_link_init(&shim);
	gw_link_set_lazy_ack(&shim, true);
	for (int i = 0; i < 5; i++)
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "line\n", 5, &err), 0);
	deliver(&agent, &shim);
	assert_true(gw_link_ack_owed(&shim));
	assert_false(gw_link_want_write(&shim)); /* owed, not due */
	gw_link_ack_now(&shim);
	assert_true(gw_link_want_write(&shim));
	pump(&shim, &agent);
	assert_int_equal(agent.n_unacked, 0);
	assert_false(gw_link_ack_owed(&shim));
	assert_false(gw_link_want_write(&shim));

	/* past the frame count: due without being told */
	for (int i = 0; i < GW_LINK_LAZY_ACK_FRAMES; i++)
		assert_int_equal(gw_link_send(&agent, GW_FRAME_STDERR, 0, "e", 1, &err), 0);
	deliver(&agent, &shim);
	assert_true(gw_link_want_write(&shim));
	pump(&shim, &agent);
	assert_int_equal(agent.n_unacked, 0);

	/* past the byte count */
	static char half[GW_LINK_LAZY_ACK_BYTES / 2]; /* a pipe holds one at a time */
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, half, sizeof(half), &err), 0);
	deliver(&agent, &shim);
	assert_false(gw_link_want_write(&shim));
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, half, sizeof(half), &err), 0);
	deliver(&agent, &shim);
	assert_true(gw_link_want_write(&shim));
	pump(&shim, &agent);
	assert_int_equal(agent.n_unacked, 0);

	/* a frame that is not output (an exit status) is acked at once, with the output before it */
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "last", 4, &err), 0);
	assert_int_equal(gw_link_send(&agent, GW_FRAME_EXIT, 0, "{\"status\":0}", 12, &err), 0);
	deliver(&agent, &shim);
	assert_true(gw_link_want_write(&shim));
	pump(&shim, &agent);
	assert_int_equal(agent.n_unacked, 0);

	/* an ack riding on a frame of ours clears what is owed */
	assert_int_equal(gw_link_send(&agent, GW_FRAME_STDOUT, 0, "x", 1, &err), 0);
	deliver(&agent, &shim);
	assert_int_equal(gw_link_send(&shim, GW_FRAME_PING, 0, "{}", 2, &err), 0);
	assert_false(gw_link_ack_owed(&shim));
	pump(&shim, &agent);
	assert_int_equal(agent.n_unacked, 0);

	/* the agent acks eagerly: not lazy unless told */
	assert_int_equal(gw_link_send(&shim, GW_FRAME_STDIN, 0, "in", 2, &err), 0);
	deliver(&shim, &agent);
	assert_true(gw_link_want_write(&agent));
	gw_link_free(&agent);
	gw_link_free(&shim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip),
		cmocka_unit_test(test_hdr_rejects),
		cmocka_unit_test(test_reader_split_anywhere),
		cmocka_unit_test(test_reader_bad_and_hunt),
		cmocka_unit_test(test_json_payload),
		cmocka_unit_test(test_ack_and_duplicates),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_save_load_resync),
		cmocka_unit_test(test_resync_diverged),
		cmocka_unit_test(test_migrated_in_order),
		cmocka_unit_test(test_hello_then_frame_one_read),
		cmocka_unit_test(test_load_rejects),
		cmocka_unit_test(test_lazy_ack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
