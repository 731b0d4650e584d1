/* The agent link's reliability layer (docs/agent-protocol.md sections 3, 4): sequence/ack
 * bookkeeping, a bounded unacked queue with retransmission, and save/load of the link state
 * (what a migration carries). Built like frame.c into libcommon and the guest agent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <json-c/json.h>

#include "godwit/frame.h"
#include "frame_int.h"

#define LINK_SAVE_MAGIC 0x47574c31u /* "GWL1" */
#define LINK_READ_CHUNK 65536

void gw_link_init(struct gw_link *l)
{
	memset(l, 0, sizeof(*l));
	l->next_seq = 1;
	gw_frame_reader_init(&l->rd);
	l->rd.hunt = true;
}

static void free_input(struct gw_link *l)
{
	for (size_t i = l->in_head; i < l->in_len; i++)
		gw_frame_free(&l->in[i]);
	l->in_head = l->in_len = 0;
}

void gw_link_free(struct gw_link *l)
{
	struct gw_link_msg *m, *next;

	for (m = l->unacked; m; m = next) {
		next = m->next;
		free(m);
	}
	free_input(l);
	free(l->in);
	free(l->out);
	gw_frame_reader_free(&l->rd);
	memset(l, 0, sizeof(*l));
}

bool gw_link_can_send(const struct gw_link *l, size_t len)
{
	return l->n_unacked < GW_LINK_UNACKED_MAX &&
	       l->unacked_bytes + GW_FRAME_HDR_LEN + len <= GW_LINK_UNACKED_BYTES;
}

/* Append bytes to the output buffer; compacts written bytes away first. */
static int out_append(struct gw_link *l, const void *data, size_t len)
{
	if (l->out_off && l->out_off == l->out_len)
		l->out_off = l->out_len = 0;
	if (l->out_len + len > l->out_cap) {
		if (l->out_off) {
			memmove(l->out, l->out + l->out_off, l->out_len - l->out_off);
			l->out_len -= l->out_off;
			l->out_off = 0;
		}
		if (l->out_len + len > l->out_cap) {
			size_t cap = l->out_cap ? l->out_cap : 4096;
			uint8_t *p;

			while (cap < l->out_len + len)
				cap *= 2;
			p = realloc(l->out, cap);
			if (!p)
				return -ENOMEM;
			l->out = p;
			l->out_cap = cap;
		}
	}
	memcpy(l->out + l->out_len, data, len);
	l->out_len += len;
	return 0;
}

/* Everything received is acknowledged (by the frame going out now). */
static void acked_all(struct gw_link *l)
{
	l->ack_sent = l->last_recv;
	l->ack_urgent = false;
	l->owed_frames = 0;
	l->owed_bytes = 0;
}

/* Copy an encoded frame to the output with the current ack patched in. */
static int out_frame(struct gw_link *l, uint8_t *data, size_t len)
{
	put32(data + 12, l->last_recv);
	acked_all(l);
	return out_append(l, data, len);
}

/* Append m to the tail of the sent-but-unacknowledged queue. */
static void unacked_append(struct gw_link *l, struct gw_link_msg *m)
{
	if (l->unacked_tail)
		l->unacked_tail->next = m;
	else
		l->unacked = m;
	l->unacked_tail = m;
	l->n_unacked++;
	l->unacked_bytes += m->len;
}

int gw_link_send(struct gw_link *l, uint16_t type, uint16_t chan, const void *payload,
		 size_t len, struct gw_err *err)
{
	struct gw_frame_hdr h = { .type = type, .chan = chan, .len = (uint32_t)len };
	struct gw_link_msg *m;
	bool numbered = !gw_frame_type_unnumbered(type);

	if (type == 0 || type > GW_FRAME_TYPE_MAX)
		return gw_err_set(err, EINVAL, "agent link: cannot send unknown type %u", type);
	if (len > GW_FRAME_MAX)
		return gw_err_set(err, EMSGSIZE, "agent link: %s payload of %zu bytes too large",
				  gw_frame_type_name(type), len);
	if (numbered && !gw_link_can_send(l, len))
		return gw_err_set(err, EAGAIN, "agent link: unacknowledged queue full");
	m = malloc(sizeof(*m) + GW_FRAME_HDR_LEN + len);
	if (!m)
		return gw_err_set(err, ENOMEM, "out of memory");
	m->next = NULL;
	m->seq = numbered ? l->next_seq : 0;
	m->len = GW_FRAME_HDR_LEN + len;
	h.seq = m->seq;
	h.ack = l->last_recv;
	gw_frame_hdr_encode(&h, m->data);
	if (len)
		memcpy(m->data + GW_FRAME_HDR_LEN, payload, len);
	if (out_frame(l, m->data, m->len) < 0) {
		free(m);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	if (!numbered) {
		free(m);
		return 0;
	}
	l->next_seq++;
	unacked_append(l, m);
	return 0;
}

int gw_link_send_json(struct gw_link *l, uint16_t type, uint16_t chan, struct json_object *obj,
		      struct gw_err *err)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);

	if (!s)
		return gw_err_set(err, ENOMEM, "out of memory");
	return gw_link_send(l, type, chan, s, len, err);
}

void gw_link_set_lazy_ack(struct gw_link *l, bool on)
{
	l->ack_lazy = on;
}

bool gw_link_ack_owed(const struct gw_link *l)
{
	return l->ack_sent != l->last_recv;
}

void gw_link_ack_now(struct gw_link *l)
{
	l->ack_urgent = true;
}

static bool ack_due(const struct gw_link *l)
{
	return gw_link_ack_owed(l) &&
	       (!l->ack_lazy || l->ack_urgent || l->owed_frames >= GW_LINK_LAZY_ACK_FRAMES ||
		l->owed_bytes >= GW_LINK_LAZY_ACK_BYTES);
}

bool gw_link_want_write(const struct gw_link *l)
{
	return l->out_off < l->out_len || ack_due(l);
}

int gw_link_flush(struct gw_link *l, int fd, struct gw_err *err)
{
	ssize_t n;

	if (l->out_off == l->out_len && ack_due(l)) {
		int ret = gw_link_send(l, GW_FRAME_ACK, 0, NULL, 0, err);

		if (ret < 0)
			return ret;
	}
	while (l->out_off < l->out_len) {
		n = write(fd, l->out + l->out_off, l->out_len - l->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return gw_err_sys(err, errno, "agent link: write");
		}
		l->out_off += (size_t)n;
	}
	l->out_off = l->out_len = 0;
	return 0;
}

void gw_link_process_ack(struct gw_link *l, uint32_t ack)
{
	struct gw_link_msg *m;

	if (ack >= l->next_seq)	/* acks what we never sent: a stale or diverged peer */
		ack = l->next_seq - 1;
	if (ack > l->peer_acked)
		l->peer_acked = ack;
	while ((m = l->unacked) && m->seq <= ack) {
		l->unacked = m->next;
		if (!l->unacked)
			l->unacked_tail = NULL;
		l->n_unacked--;
		l->unacked_bytes -= m->len;
		free(m);
	}
}

static int in_push(struct gw_link *l, struct gw_frame *f)
{
	if (l->in_head == l->in_len)
		l->in_head = l->in_len = 0;
	if (l->in_len == l->in_cap) {
		size_t cap = l->in_cap ? l->in_cap * 2 : 16;
		struct gw_frame *p = realloc(l->in, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->in = p;
		l->in_cap = cap;
	}
	l->in[l->in_len++] = *f;
	return 0;
}

/* A peer's HELLO/RESYNC whose next_seq is at or below our last_recv says its state is older
 * than ours: lower last_recv so its new frames are accepted (docs/agent-protocol.md section 4,
 * rule 3). Applied here, where the frame sits in the stream: frames read after it in the same
 * chunk already raised last_recv, and judged against that the peer would look older than it
 * is, and those frames would be accepted a second time after the next restore. */
static void sync_in_order(struct gw_link *l, const struct gw_frame *f)
{
	uint32_t last, next;

	if (gw_link_parse_sync(f, &last, &next, NULL) == 0 && next && l->last_recv >= next)
		l->last_recv = next - 1;
}

int gw_link_feed(struct gw_link *l, const void *buf, size_t len, struct gw_err *err)
{
	const uint8_t *p = buf;
	struct gw_frame f;
	size_t used;
	int ret;

	while (len) {
		ret = gw_frame_reader_feed(&l->rd, p, len, &used, &f, err);
		if (ret < 0)
			return ret;
		p += used;
		len -= used;
		if (ret == 0)
			break;
		gw_link_process_ack(l, f.hdr.ack);
		if (f.hdr.type == GW_FRAME_ACK) {
			gw_frame_free(&f);
			continue;
		}
		if (f.hdr.seq != 0) {
			if (f.hdr.seq <= l->last_recv) {
				l->dropped_dups++;
				gw_frame_free(&f);
				continue;
			}
			if (l->in_order && f.hdr.seq != l->last_recv + 1) {
				l->gaps++;
				gw_frame_free(&f);
				continue;
			}
			l->last_recv = f.hdr.seq;
			if (f.hdr.type == GW_FRAME_STDOUT || f.hdr.type == GW_FRAME_STDERR) {
				l->owed_frames++;
				l->owed_bytes += f.hdr.len;
			} else {
				l->ack_urgent = true;
			}
		} else if (f.hdr.type == GW_FRAME_HELLO || f.hdr.type == GW_FRAME_RESYNC) {
			sync_in_order(l, &f);
		}
		if (in_push(l, &f) < 0) {
			gw_frame_free(&f);
			return gw_err_set(err, ENOMEM, "out of memory");
		}
	}
	return 0;
}

void gw_link_set_in_order(struct gw_link *l, bool on)
{
	l->in_order = on;
}

bool gw_link_lost_some(const struct gw_link *l)
{
	return l->rd.skipped || l->gaps;
}

ssize_t gw_link_read(struct gw_link *l, int fd, struct gw_err *err)
{
	uint8_t buf[LINK_READ_CHUNK];
	ssize_t n;
	int ret;

	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return -EAGAIN;
		return gw_err_sys(err, errno, "agent link: read");
	}
	ret = gw_link_feed(l, buf, (size_t)n, err);
	return ret < 0 ? ret : n;
}

int gw_link_next(struct gw_link *l, struct gw_frame *f)
{
	if (l->in_head == l->in_len)
		return 0;
	*f = l->in[l->in_head++];
	return 1;
}

void gw_link_reset_io(struct gw_link *l)
{
	gw_frame_reader_free(&l->rd);
	l->rd.hunt = true;
	free_input(l);
	l->out_off = l->out_len = 0;
}

int gw_link_peer_reset(struct gw_link *l, uint32_t peer_last_recv, uint16_t reply,
		       struct gw_err *err)
{
	struct gw_link_msg *m;
	int n = 0, ret;

	gw_link_process_ack(l, peer_last_recv);
	/* Our state is older than the peer's: number new frames after what it has. */
	if (peer_last_recv >= l->next_seq)
		l->next_seq = peer_last_recv + 1;
	if (reply) {
		ret = gw_link_send_sync(l, reply, err);
		if (ret < 0)
			return ret;
	}
	for (m = l->unacked; m; m = m->next) {
		if (m->seq <= peer_last_recv)
			continue;
		if (out_frame(l, m->data, m->len) < 0)
			return gw_err_set(err, ENOMEM, "out of memory");
		n++;
	}
	return n;
}

int gw_link_send_sync(struct gw_link *l, uint16_t type, struct gw_err *err)
{
	struct json_object *o = json_object_new_object();
	int ret;

	if (!o)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (type == GW_FRAME_HELLO)
		json_object_object_add(o, "version", json_object_new_int(GW_AGENT_PROTO_VERSION));
	json_object_object_add(o, "last_recv", json_object_new_int64(l->last_recv));
	json_object_object_add(o, "next_seq", json_object_new_int64(l->next_seq));
	ret = gw_link_send_json(l, type, 0, o, err);
	json_object_put(o);
	return ret;
}

static int get_u32(struct json_object *o, const char *key, uint32_t *out, struct gw_err *err)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return gw_err_set(err, EPROTO, "agent frame: \"%s\" missing or not an integer",
				  key);
	x = json_object_get_int64(v);
	if (x < 0 || x > UINT32_MAX)
		return gw_err_set(err, EPROTO, "agent frame: \"%s\" out of range", key);
	*out = (uint32_t)x;
	return 0;
}

int gw_link_parse_sync(const struct gw_frame *f, uint32_t *last_recv, uint32_t *next_seq,
		       struct gw_err *err)
{
	struct json_object *o;
	int ret;

	ret = gw_frame_json(f, &o, err);
	if (ret < 0)
		return ret;
	ret = get_u32(o, "last_recv", last_recv, err);
	if (ret == 0)
		ret = get_u32(o, "next_seq", next_seq, err);
	json_object_put(o);
	return ret;
}

/* Save format: "GWL1", next_seq, last_recv, count (u32 BE each), then count encoded frames. */
int gw_link_save(const struct gw_link *l, uint8_t **buf, size_t *len, struct gw_err *err)
{
	const struct gw_link_msg *m;
	size_t total = 16, off = 16;
	uint8_t *p;

	for (m = l->unacked; m; m = m->next)
		total += m->len;
	p = malloc(total);
	if (!p)
		return gw_err_set(err, ENOMEM, "out of memory");
	put32(p, LINK_SAVE_MAGIC);
	put32(p + 4, l->next_seq);
	put32(p + 8, l->last_recv);
	put32(p + 12, (uint32_t)l->n_unacked);
	for (m = l->unacked; m; m = m->next) {
		memcpy(p + off, m->data, m->len);
		off += m->len;
	}
	*buf = p;
	*len = total;
	return 0;
}

int gw_link_load(struct gw_link *l, const void *buf, size_t len, struct gw_err *err)
{
	const uint8_t *p = buf;
	struct gw_frame_hdr h;
	struct gw_link_msg *m;
	uint32_t count, prev = 0;
	size_t off = 16;
	int ret;

	if (len < 16 || get32(p) != LINK_SAVE_MAGIC)
		return gw_err_set(err, EINVAL, "agent link state: bad header");
	gw_link_free(l);
	gw_link_init(l);
	l->next_seq = get32(p + 4);
	l->last_recv = get32(p + 8);
	l->ack_sent = l->last_recv;
	count = get32(p + 12);
	if (l->next_seq == 0 || count > GW_LINK_UNACKED_MAX)
		return gw_err_set(err, EINVAL, "agent link state: bad next_seq or count");
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < GW_FRAME_HDR_LEN) {
			ret = gw_err_set(err, EINVAL, "agent link state: truncated");
			goto fail;
		}
		ret = gw_frame_hdr_decode(p + off, &h, err);
		if (ret < 0 || h.seq == 0 || h.seq <= prev || h.seq >= l->next_seq ||
		    len - off - GW_FRAME_HDR_LEN < h.len ||
		    l->unacked_bytes + GW_FRAME_HDR_LEN + h.len > GW_LINK_UNACKED_BYTES) {
			ret = gw_err_set(err, EINVAL, "agent link state: bad frame %u", i);
			goto fail;
		}
		prev = h.seq;
		m = malloc(sizeof(*m) + GW_FRAME_HDR_LEN + h.len);
		if (!m) {
			ret = gw_err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		m->next = NULL;
		m->seq = h.seq;
		m->len = GW_FRAME_HDR_LEN + h.len;
		memcpy(m->data, p + off, m->len);
		off += m->len;
		unacked_append(l, m);
	}
	if (off != len) {
		ret = gw_err_set(err, EINVAL, "agent link state: %zu trailing bytes", len - off);
		goto fail;
	}
	if (l->unacked)
		l->peer_acked = l->unacked->seq - 1;
	return 0;
fail:
	gw_link_free(l);
	gw_link_init(l);
	return ret;
}
