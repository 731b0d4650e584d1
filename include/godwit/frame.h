/* The agent link (docs/agent-protocol.md): frame header encode/decode, an incremental frame
 * reader, and the link state (sequence numbers, cumulative acks, the bounded queue of sent but
 * unacknowledged frames, retransmission, save/load across a migration). Shared by the shim and
 * godwit-agent; no I/O policy beyond read()/write() on an fd the caller owns.
 *
 * Usage from a poll() loop (non-blocking fd):
 *
 *	struct gw_link link;
 *	gw_link_init(&link);
 *	...
 *	pfd.fd = port_fd;
 *	pfd.events = POLLIN | (gw_link_want_write(&link) ? POLLOUT : 0);
 *	// read a source (process pipe, client stdin) only while gw_link_can_send(&link, n)
 *	poll(...);
 *	if (pfd.revents & POLLIN) {
 *		r = gw_link_read(&link, port_fd, &err);	// 0 = EOF, <0 error (-EAGAIN is fine)
 *		struct gw_frame f;
 *		while (gw_link_next(&link, &f) > 0) {
 *			handle(&f);				// acks/duplicates already handled
 *			gw_frame_free(&f);
 *		}
 *	}
 *	gw_link_send(&link, GW_FRAME_STDOUT, chan, buf, n, &err);	// queue, never blocks
 *	if (gw_link_want_write(&link))
 *		gw_link_flush(&link, port_fd, &err);	// writes what it can, adds an ACK if due
 *
 * After reconnecting (new shim, restored guest): gw_link_reset_io(), then the RESYNC/HELLO
 * exchange: gw_link_send_sync() on one side, gw_link_parse_sync() and gw_link_peer_reset() on
 * the other (docs/agent-protocol.md section 4). The codec and reader are src/common/frame.c,
 * the link state src/common/link.c. */
#ifndef GODWIT_FRAME_H
#define GODWIT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "godwit/err.h"

struct json_object;

#define GW_FRAME_MAGIC 0x47574131u /* "GWA1" */
#define GW_FRAME_HDR_LEN 20
#define GW_FRAME_MAX (256 * 1024)
#define GW_AGENT_PORT_NAME "org.godwit.agent"
#define GW_AGENT_PROTO_VERSION 1

/* Bounds of the sent-but-unacknowledged queue; when either would be exceeded, gw_link_send
 * refuses with -EAGAIN and the caller stops reading its sources (back-pressure). */
#define GW_LINK_UNACKED_MAX 512
#define GW_LINK_UNACKED_BYTES (4u * 1024 * 1024)
/* A lazy acknowledger (gw_link_set_lazy_ack) acks output at once past these, well inside the
 * bounds above, so a sender never waits for an ack that waits for it */
#define GW_LINK_LAZY_ACK_FRAMES 32
#define GW_LINK_LAZY_ACK_BYTES (64u * 1024)

enum gw_frame_type {
	GW_FRAME_HELLO = 1,
	GW_FRAME_RESYNC = 2,
	GW_FRAME_START = 3,
	GW_FRAME_EXEC = 4,
	GW_FRAME_STARTED = 5,
	GW_FRAME_STDOUT = 6,
	GW_FRAME_STDERR = 7,
	GW_FRAME_STDIN = 8,
	GW_FRAME_SIGNAL = 9,
	GW_FRAME_EXIT = 10,
	GW_FRAME_ERROR = 11,
	GW_FRAME_PING = 12,
	GW_FRAME_PONG = 13,
	GW_FRAME_SHUTDOWN = 14,
	GW_FRAME_ACK = 15,
	/* 16 was TLBFLUSH (a guest TLB flusher for QEMU < 9.0 under TCG): not to be reused */
	GW_FRAME_WINSIZE = 17,	/* host→agent: a tty's window size {"rows","cols"} */
	GW_FRAME_QUERY = 18,	/* host→agent: {"id","what": "ps"|"stats"} */
	GW_FRAME_ANSWER = 19,	/* agent→host: {"id", "ps"|"stats"|"error"} */
	GW_FRAME_TYPE_MAX = 19,
};

struct gw_frame_hdr {
	uint16_t type;
	uint16_t chan;
	uint32_t seq;
	uint32_t ack;
	uint32_t len;
};

/* A received frame. payload is malloc'd with one extra NUL byte (so a JSON payload is a C
 * string), or NULL when len is 0. Release with gw_frame_free. */
struct gw_frame {
	struct gw_frame_hdr hdr;
	uint8_t *payload;
};

/* "HELLO", "STDOUT", ...; "?" for an unknown type. Any caller. */
const char *gw_frame_type_name(unsigned int type);

/* True for the types that carry seq 0 and are never queued or acknowledged (ACK, HELLO,
 * RESYNC). */
bool gw_frame_type_unnumbered(unsigned int type);

/* Encode a header (big-endian) into out. */
void gw_frame_hdr_encode(const struct gw_frame_hdr *h, uint8_t out[GW_FRAME_HDR_LEN]);

/* Decode and validate a header: magic, known type, len <= GW_FRAME_MAX, seq 0 exactly for the
 * unnumbered types. Returns 0 or -EPROTO with err filled. */
int gw_frame_hdr_decode(const uint8_t in[GW_FRAME_HDR_LEN], struct gw_frame_hdr *h,
			struct gw_err *err);

void gw_frame_free(struct gw_frame *f);

/* Parse a frame's payload as one JSON object; *out is a new reference. -EPROTO if it is not a
 * JSON object (or has trailing garbage). */
int gw_frame_json(const struct gw_frame *f, struct json_object **out, struct gw_err *err);

/* Incremental reader: bytes in, complete frames out; the stream may be split anywhere. */
struct gw_frame_reader {
	uint8_t hdr_buf[GW_FRAME_HDR_LEN];
	size_t hdr_have;
	struct gw_frame cur;	/* header decoded once hdr_have == GW_FRAME_HDR_LEN */
	size_t payload_have;
	bool hunt;		/* skip bytes until a valid header (stream joined mid-frame) */
	size_t skipped;		/* bytes hunting skipped since init: a torn frame's */
};

void gw_frame_reader_init(struct gw_frame_reader *r);
void gw_frame_reader_free(struct gw_frame_reader *r);

/* Consume bytes from buf[0..len). Sets *used to the bytes consumed. Returns 1 when a frame is
 * complete (moved into *out, caller frees; call again with the rest of buf), 0 when all of buf
 * was consumed without completing a frame, -EPROTO on a bad header (the stream is then
 * unusable until gw_frame_reader_init/free and a resync). With r->hunt set, bad headers are
 * skipped byte by byte instead, until the first valid one (then hunt clears). */
int gw_frame_reader_feed(struct gw_frame_reader *r, const void *buf, size_t len, size_t *used,
			 struct gw_frame *out, struct gw_err *err);

/* One queued frame, encoded (header + payload). */
struct gw_link_msg {
	struct gw_link_msg *next;
	uint32_t seq;
	size_t len;
	uint8_t data[];
};

struct gw_link {
	uint32_t next_seq;	/* seq of our next numbered frame (starts at 1) */
	uint32_t last_recv;	/* highest seq received from the peer */
	uint32_t peer_acked;	/* highest of our seqs the peer acknowledged */
	uint32_t ack_sent;	/* last ack value we put on the wire */
	/* Sent (or queued) numbered frames the peer has not acknowledged, in seq order. */
	struct gw_link_msg *unacked, *unacked_tail;
	size_t n_unacked, unacked_bytes;
	/* Bytes waiting to be written to the fd; out_off bytes of it are already written. */
	uint8_t *out;
	size_t out_len, out_cap, out_off;
	/* Received frames accepted but not yet taken with gw_link_next. */
	struct gw_frame_reader rd;
	struct gw_frame *in;
	size_t in_len, in_cap, in_head;
	uint64_t dropped_dups;	/* duplicates dropped (statistics, tests) */
	/* in-order mode (gw_link_set_in_order): numbered frames past last_recv + 1 dropped */
	bool in_order;
	uint64_t gaps;
	/* lazy acks (gw_link_set_lazy_ack): output received since our last ack */
	bool ack_lazy, ack_urgent;
	uint32_t owed_frames;
	size_t owed_bytes;
};

/* Fresh link: next_seq 1, last_recv 0, empty queues, reader hunting for the first header. */
void gw_link_init(struct gw_link *l);

/* Free all queues. The link may be re-initialised afterwards. */
void gw_link_free(struct gw_link *l);

/* True when a numbered frame with a payload of len bytes fits in the unacked queue now; read
 * a source only when this holds (back-pressure). */
bool gw_link_can_send(const struct gw_link *l, size_t len);

/* Queue a frame for writing. Numbered types get the next seq and stay in the unacked queue
 * until acknowledged; -EAGAIN when the queue is full, -EMSGSIZE when len > GW_FRAME_MAX. */
int gw_link_send(struct gw_link *l, uint16_t type, uint16_t chan, const void *payload,
		 size_t len, struct gw_err *err);

/* gw_link_send with a JSON object serialised as the payload (obj is not consumed). */
int gw_link_send_json(struct gw_link *l, uint16_t type, uint16_t chan, struct json_object *obj,
		      struct gw_err *err);

/* Lazy acks: output frames (STDOUT, STDERR) are acknowledged only once GW_LINK_LAZY_ACK_*
 * of them are owed, any other frame at once, and whatever is owed when gw_link_ack_now says
 * so (the caller's timer); an ack rides on any frame we send anyway. Each ack costs the peer a
 * wake-up: a guest printing 1000 lines/s otherwise handles 1000 acks/s. Set after
 * gw_link_init (which clears it). */
void gw_link_set_lazy_ack(struct gw_link *l, bool on);
/* True when we have received frames we have not acknowledged yet. */
bool gw_link_ack_owed(const struct gw_link *l);
/* Acknowledge what is owed at the next flush. */
void gw_link_ack_now(struct gw_link *l);

/* True when there are bytes to write or an ACK is due: poll for POLLOUT. */
bool gw_link_want_write(const struct gw_link *l);

/* Write as much as the (usually non-blocking) fd takes; queues an ACK first if one is due.
 * Returns 0 (all written, or the fd would block) or a negative errno. */
int gw_link_flush(struct gw_link *l, int fd, struct gw_err *err);

/* Feed received bytes: frames are decoded, acks processed, duplicates dropped; accepted frames
 * wait for gw_link_next. Returns 0 or -EPROTO (then reset_io + resync). */
int gw_link_feed(struct gw_link *l, const void *buf, size_t len, struct gw_err *err);

/* read() once from fd (up to 64 KiB) and gw_link_feed it. Returns the bytes read (> 0),
 * 0 on EOF, -EAGAIN when nothing was there, or another negative errno. */
ssize_t gw_link_read(struct gw_link *l, int fd, struct gw_err *err);

/* Take the next accepted frame into *f (caller frees). 1 = a frame, 0 = none. */
int gw_link_next(struct gw_link *l, struct gw_frame *f);

/* Process a cumulative ack: release our frames with seq <= ack. */
void gw_link_process_ack(struct gw_link *l, uint32_t ack);

/* Drop partially read/written bytes and pending input (a new connection or a stream error) and
 * make the reader hunt for the next valid header. Sequence state and the unacked queue are
 * kept. */
void gw_link_reset_io(struct gw_link *l);

/* Apply the peer's HELLO/RESYNC (its last_recv): release what it has, continue numbering
 * after it if it acknowledges more than we sent, then, if reply is GW_FRAME_HELLO or
 * GW_FRAME_RESYNC, queue that frame (so it carries the reconciled state and precedes the
 * resent frames), then queue our unacked frames after peer_last_recv for retransmission
 * (docs/agent-protocol.md section 4). Its next_seq was already applied by gw_link_feed, where
 * the frame sat in the stream. Call gw_link_reset_io first when the connection is new.
 * Returns the number of frames resent, or a negative errno. The agent replies HELLO to
 * RESYNC; the host passes 0 on HELLO. */
int gw_link_peer_reset(struct gw_link *l, uint32_t peer_last_recv, uint16_t reply,
		       struct gw_err *err);

/* In-order mode, for a link restored without a RESYNC (docs/agent-protocol.md section 4): a
 * numbered frame past last_recv + 1 means frames were lost; it is dropped unacknowledged (the
 * peer keeps it for the resend a RESYNC brings) and counted in gaps. */
void gw_link_set_in_order(struct gw_link *l, bool on);
/* True when received frames may have been lost: bytes skipped hunting for a header (a torn
 * frame) or, in in-order mode, a gap in the sequence. */
bool gw_link_lost_some(const struct gw_link *l);

/* Send HELLO (agent) or RESYNC (host) carrying our last_recv and next_seq. */
int gw_link_send_sync(struct gw_link *l, uint16_t type, struct gw_err *err);

/* Read "last_recv"/"next_seq" from a HELLO/RESYNC frame payload. */
int gw_link_parse_sync(const struct gw_frame *f, uint32_t *last_recv, uint32_t *next_seq,
		       struct gw_err *err);

/* Serialise the link state (next_seq, last_recv, unacked frames) into a malloc'd buffer, for a
 * snapshot or a migration; and restore it into a fresh (init'ed) link. Load validates
 * everything (it crosses hosts) and fails with -EINVAL and a message. */
int gw_link_save(const struct gw_link *l, uint8_t **buf, size_t *len, struct gw_err *err);
int gw_link_load(struct gw_link *l, const void *buf, size_t len, struct gw_err *err);

#endif
