/* The agent link's frames (docs/agent-protocol.md section 1): the header codec and the
 * incremental reader; the reliability layer on top is link.c. Built into libcommon (host
 * side) and into the static guest agent (-DGW_AGENT), so it uses only libc, json-c and
 * err.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <json-c/json.h>

#include "godwit/frame.h"
#include "frame_int.h"


static const char *const type_names[GW_FRAME_TYPE_MAX + 1] = {
	[GW_FRAME_HELLO] = "HELLO",	[GW_FRAME_RESYNC] = "RESYNC",
	[GW_FRAME_START] = "START",	[GW_FRAME_EXEC] = "EXEC",
	[GW_FRAME_STARTED] = "STARTED", [GW_FRAME_STDOUT] = "STDOUT",
	[GW_FRAME_STDERR] = "STDERR",	[GW_FRAME_STDIN] = "STDIN",
	[GW_FRAME_SIGNAL] = "SIGNAL",	[GW_FRAME_EXIT] = "EXIT",
	[GW_FRAME_ERROR] = "ERROR",	[GW_FRAME_PING] = "PING",
	[GW_FRAME_PONG] = "PONG",	[GW_FRAME_SHUTDOWN] = "SHUTDOWN",
	[GW_FRAME_ACK] = "ACK",		[GW_FRAME_WINSIZE] = "WINSIZE",
	[GW_FRAME_QUERY] = "QUERY",	[GW_FRAME_ANSWER] = "ANSWER",
};

const char *gw_frame_type_name(unsigned int type)
{
	if (type > GW_FRAME_TYPE_MAX || !type_names[type])
		return "?";
	return type_names[type];
}

bool gw_frame_type_unnumbered(unsigned int type)
{
	return type == GW_FRAME_ACK || type == GW_FRAME_HELLO || type == GW_FRAME_RESYNC;
}

void gw_frame_hdr_encode(const struct gw_frame_hdr *h, uint8_t out[GW_FRAME_HDR_LEN])
{
	put32(out, GW_FRAME_MAGIC);
	out[4] = h->type >> 8;
	out[5] = h->type & 0xff;
	out[6] = h->chan >> 8;
	out[7] = h->chan & 0xff;
	put32(out + 8, h->seq);
	put32(out + 12, h->ack);
	put32(out + 16, h->len);
}

int gw_frame_hdr_decode(const uint8_t in[GW_FRAME_HDR_LEN], struct gw_frame_hdr *h,
			struct gw_err *err)
{
	uint32_t magic = get32(in);

	if (magic != GW_FRAME_MAGIC)
		return gw_err_set(err, EPROTO, "agent frame: bad magic 0x%08x", magic);
	h->type = (uint16_t)(in[4] << 8 | in[5]);
	h->chan = (uint16_t)(in[6] << 8 | in[7]);
	h->seq = get32(in + 8);
	h->ack = get32(in + 12);
	h->len = get32(in + 16);
	if (h->type == 0 || h->type > GW_FRAME_TYPE_MAX || !type_names[h->type])
		return gw_err_set(err, EPROTO, "agent frame: unknown type %u", h->type);
	if (h->len > GW_FRAME_MAX)
		return gw_err_set(err, EPROTO, "agent frame %s: payload of %u bytes exceeds %u",
				  gw_frame_type_name(h->type), h->len, GW_FRAME_MAX);
	if (gw_frame_type_unnumbered(h->type) != (h->seq == 0))
		return gw_err_set(err, EPROTO, "agent frame %s: invalid seq %u",
				  gw_frame_type_name(h->type), h->seq);
	return 0;
}

void gw_frame_free(struct gw_frame *f)
{
	free(f->payload);
	f->payload = NULL;
}

int gw_frame_json(const struct gw_frame *f, struct json_object **out, struct gw_err *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t end;

	*out = NULL;
	if (!f->payload || f->hdr.len == 0)
		return gw_err_set(err, EPROTO, "agent frame %s: empty JSON payload",
				  gw_frame_type_name(f->hdr.type));
	tok = json_tokener_new();
	if (!tok)
		return gw_err_set(err, ENOMEM, "out of memory");
	obj = json_tokener_parse_ex(tok, (const char *)f->payload, (int)f->hdr.len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || !json_object_is_type(obj, json_type_object) || end != f->hdr.len) {
		json_object_put(obj);
		return gw_err_set(err, EPROTO, "agent frame %s: payload is not one JSON object",
				  gw_frame_type_name(f->hdr.type));
	}
	*out = obj;
	return 0;
}

void gw_frame_reader_init(struct gw_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void gw_frame_reader_free(struct gw_frame_reader *r)
{
	gw_frame_free(&r->cur);
	gw_frame_reader_init(r);
}

int gw_frame_reader_feed(struct gw_frame_reader *r, const void *buf, size_t len, size_t *used,
			 struct gw_frame *out, struct gw_err *err)
{
	const uint8_t *p = buf;
	size_t n, pos = 0;
	int ret;

	*used = 0;
	while (pos < len || (r->hdr_have == GW_FRAME_HDR_LEN &&
			     r->payload_have == r->cur.hdr.len)) {
		if (r->hdr_have < GW_FRAME_HDR_LEN) {
			n = GW_FRAME_HDR_LEN - r->hdr_have;
			if (n > len - pos)
				n = len - pos;
			memcpy(r->hdr_buf + r->hdr_have, p + pos, n);
			r->hdr_have += n;
			pos += n;
			if (r->hdr_have < GW_FRAME_HDR_LEN)
				break;
			ret = gw_frame_hdr_decode(r->hdr_buf, &r->cur.hdr, err);
			if (ret < 0 && r->hunt) {
				memmove(r->hdr_buf, r->hdr_buf + 1, GW_FRAME_HDR_LEN - 1);
				r->hdr_have--;
				r->skipped++;
				continue;
			}
			r->hunt = false;
			if (ret < 0) {
				*used = pos;
				return ret;
			}
			if (r->cur.hdr.len) {
				r->cur.payload = malloc(r->cur.hdr.len + 1);
				if (!r->cur.payload) {
					r->hdr_have = 0;
					*used = pos;
					return gw_err_set(err, ENOMEM, "out of memory");
				}
			}
			r->payload_have = 0;
			continue;
		}
		n = r->cur.hdr.len - r->payload_have;
		if (n > len - pos)
			n = len - pos;
		if (n) {
			memcpy(r->cur.payload + r->payload_have, p + pos, n);
			r->payload_have += n;
			pos += n;
		}
		if (r->payload_have == r->cur.hdr.len) {
			if (r->cur.payload)
				r->cur.payload[r->cur.hdr.len] = 0;
			*out = r->cur;
			r->cur.payload = NULL;
			r->hdr_have = 0;
			r->payload_have = 0;
			*used = pos;
			return 1;
		}
	}
	*used = pos;
	return 0;
}

