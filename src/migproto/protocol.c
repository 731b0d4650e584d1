/* The migration protocol's wire layer (docs/migration-protocol.md §1 "Framing", §3 CONFIG):
 * checked headers, whole-message send/receive with deadlines, JSON control messages and the
 * DISK/STATE streams with an end-to-end SHA-256. Knows nothing about QEMU or shims. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/evp.h>

#include "godwit/migproto.h"
#include "godwit/util.h"
#include "godwit/version.h"

static const char *const type_names[] = {
	[MIG_HELLO] = "HELLO", [MIG_CONFIG] = "CONFIG", [MIG_PREPARE] = "PREPARE",
	[MIG_DISK_DATA] = "DISK_DATA", [MIG_DISK_END] = "DISK_END",
	[MIG_STATE_DATA] = "STATE_DATA", [MIG_STATE_END] = "STATE_END",
	[MIG_RAM_BEGIN] = "RAM_BEGIN", [MIG_DONE] = "DONE", [MIG_RUNNING] = "RUNNING",
	[MIG_COMMIT] = "COMMIT", [MIG_COMMIT_ACK] = "COMMIT_ACK", [MIG_ABORT] = "ABORT",
};

const char *mig_type_name(uint16_t type)
{
	return type >= 1 && type <= MIG_TYPE_MAX ? type_names[type] : "unknown";
}

void mig_conn_init(struct mig_conn *c, int fd, int timeout_ms)
{
	c->fd = fd;
	c->tx_seq = 0;
	c->rx_seq = 0;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : MIG_DEFAULT_TIMEOUT_MS;
	c->wait = NULL;
	c->wait_arg = NULL;
	c->io = NULL;
	c->io_arg = NULL;
}

/* CRC-32C: SSE4.2's crc32 instruction where the CPU has it (GB/s), else bit by bit. */
static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
							     size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t mig_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_soft(crc, buf, len);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void mig_hdr_encode(const struct mig_hdr *h, uint8_t out[MIG_HDR_SIZE])
{
	put32(out, h->magic);
	out[4] = (uint8_t)(h->version >> 8);
	out[5] = (uint8_t)h->version;
	out[6] = (uint8_t)(h->type >> 8);
	out[7] = (uint8_t)h->type;
	put32(out + 8, h->length);
	put32(out + 12, h->seq);
	put32(out + 16, h->crc);
}

static uint32_t max_len_for(uint16_t type)
{
	return type == MIG_DISK_DATA || type == MIG_STATE_DATA ? MIG_MAX_CHUNK : MIG_MAX_JSON;
}

int mig_hdr_decode(const uint8_t in[MIG_HDR_SIZE], struct mig_hdr *h, struct gw_err *err)
{
	h->magic = get32(in);
	h->version = (uint16_t)(in[4] << 8 | in[5]);
	h->type = (uint16_t)(in[6] << 8 | in[7]);
	h->length = get32(in + 8);
	h->seq = get32(in + 12);
	h->crc = get32(in + 16);
	if (h->magic != MIG_MAGIC)
		return gw_err_set(err, EPROTO, "bad message magic 0x%08x (expected 0x%08x \"GWM1\")",
				  h->magic, MIG_MAGIC);
	if (h->version != MIG_VERSION)
		return gw_err_set(err, EPROTO,
				  "unsupported migration protocol version %u (this godwit speaks %u)",
				  h->version, MIG_VERSION);
	if (h->type < 1 || h->type > MIG_TYPE_MAX)
		return gw_err_set(err, EPROTO, "unknown message type %u", h->type);
	if (h->length > max_len_for(h->type))
		return gw_err_set(err, EMSGSIZE, "%s message of %u bytes exceeds the limit of %u",
				  mig_type_name(h->type), h->length, max_len_for(h->type));
	return 0;
}

static int ms_left(int64_t deadline)
{
	int64_t left = (deadline - gw_now_mono_ns()) / 1000000;
	return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Wait for fd to be ready for events until the deadline: 1, or 0 when it passed. */
static int io_wait(const struct mig_conn *c, short events, int64_t deadline)
{
	for (;;) {
		int left = ms_left(deadline), r;
		if (c->wait) {
			r = c->wait(c->wait_arg, c->fd, events, left);
		} else {
			struct pollfd pfd = { .fd = c->fd, .events = events };
			r = poll(&pfd, 1, left);
			if (r < 0 && errno != EINTR)
				return -errno;
		}
		if (r > 0)
			return 1;
		if (ms_left(deadline) == 0)
			return 0;
		/* woken early (a signal, a turn of the loop): wait on */
	}
}

/* One read or write of at most len bytes: through the TLS session, or the fd itself (which
 * may be blocking: never ask for more than poll promised). */
static ssize_t io_once(const struct mig_conn *c, char *p, size_t len, int writing,
		       short *events)
{
	if (c->io)
		return c->io(c->io_arg, p, len, writing, events);
	ssize_t n;
	if (writing) {
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK)
			n = write(c->fd, p, len < PIPE_BUF ? len : PIPE_BUF);
	} else {
		n = read(c->fd, p, len);
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
		*events = writing ? POLLOUT : POLLIN;
		return -EAGAIN;
	}
	return n < 0 ? -errno : n;
}

/* Read or write exactly len bytes before the deadline. Read: 0 bytes at EOF before anything
 * was read is -ECONNRESET (clean close), later -EPIPE (truncated). A plain fd is waited for
 * before each step; a TLS session is tried first (it may hold what was read already). */
static int io_full(const struct mig_conn *c, void *buf, size_t len, int writing,
		   int64_t deadline)
{
	char *p = buf;
	size_t done = 0;
	if (c->fd < 0) /* poll would skip it and sit out the whole deadline */
		return -EBADF;
	short ev = writing ? POLLOUT : POLLIN;
	int try_first = c->io != NULL, ready = try_first;
	while (done < len) {
		if (!ready) {
			int w = io_wait(c, ev, deadline);
			if (w <= 0)
				return w < 0 ? w : -ETIMEDOUT;
		}
		ssize_t n = io_once(c, p + done, len - done, writing, &ev);
		ready = try_first;
		if (n == -EAGAIN) {
			ready = 0; /* wait for what io_once said, then try again */
			continue;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return done == 0 ? -ECONNRESET : -EPIPE;
		done += (size_t)n;
	}
	return 0;
}

int mig_send(struct mig_conn *c, uint16_t type, const void *payload, uint32_t len,
	     struct gw_err *err)
{
	if (type < 1 || type > MIG_TYPE_MAX || len > max_len_for(type))
		return gw_err_set(err, EINVAL, "refusing to send %s message of %u bytes",
				  mig_type_name(type), len);
	struct mig_hdr h = { MIG_MAGIC, MIG_VERSION, type, len, c->tx_seq,
			     mig_crc32c(0, payload, len) };
	uint8_t buf[MIG_HDR_SIZE];
	mig_hdr_encode(&h, buf);
	int64_t deadline = gw_now_mono_ns() + (int64_t)c->timeout_ms * 1000000;
	int r = io_full(c, buf, sizeof(buf), 1, deadline);
	if (r == 0 && len)
		r = io_full(c, (void *)payload, len, 1, deadline);
	if (r == -ETIMEDOUT)
		return gw_err_set(err, ETIMEDOUT, "send %s: peer not reading for %d ms",
				  mig_type_name(type), c->timeout_ms);
	if (r < 0)
		return gw_err_sys(err, -r, "send %s", mig_type_name(type));
	c->tx_seq++;
	return 0;
}

int mig_recv(struct mig_conn *c, int timeout_ms, struct mig_msg *out, struct gw_err *err)
{
	memset(out, 0, sizeof(*out));
	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	uint8_t buf[MIG_HDR_SIZE];
	struct mig_hdr h;
	int r = io_full(c, buf, sizeof(buf), 0, deadline);
	if (r == -ETIMEDOUT)
		return gw_err_set(err, ETIMEDOUT, "no message from peer in %d ms", timeout_ms);
	if (r == -ECONNRESET)
		return gw_err_set(err, ECONNRESET, "peer closed the connection");
	if (r == -EPIPE)
		return gw_err_set(err, EPIPE, "peer closed the connection inside a message header");
	if (r < 0)
		return gw_err_sys(err, -r, "receive message header");
	if ((r = mig_hdr_decode(buf, &h, err)) < 0)
		return r;
	if (h.seq != c->rx_seq)
		return gw_err_set(err, EPROTO, "%s message has sequence %u, expected %u",
				  mig_type_name(h.type), h.seq, c->rx_seq);
	cleanup_free char *payload = malloc((size_t)h.length + 1);
	if (!payload)
		return gw_err_set(err, ENOMEM, "out of memory for a %u-byte message", h.length);
	r = io_full(c, payload, h.length, 0, deadline);
	if (r == -ETIMEDOUT)
		return gw_err_set(err, ETIMEDOUT, "%s message of %u bytes not received in %d ms",
				  mig_type_name(h.type), h.length, timeout_ms);
	if (r == -ECONNRESET || r == -EPIPE)
		return gw_err_set(err, EPIPE, "peer closed the connection inside a %s message",
				  mig_type_name(h.type));
	if (r < 0)
		return gw_err_sys(err, -r, "receive %s payload", mig_type_name(h.type));
	payload[h.length] = '\0';
	uint32_t crc = mig_crc32c(0, payload, h.length);
	if (crc != h.crc)
		return gw_err_set(err, EBADMSG, "checksum mismatch in %s message %u (crc32c %08x, "
				  "header says %08x)", mig_type_name(h.type), h.seq, crc, h.crc);
	c->rx_seq++;
	out->type = h.type;
	out->len = h.length;
	out->seq = h.seq;
	out->payload = steal_ptr(payload);
	return 0;
}

void mig_msg_free(struct mig_msg *m)
{
	free(m->payload);
	m->payload = NULL;
}

int mig_send_json(struct mig_conn *c, uint16_t type, struct json_object *obj, struct gw_err *err)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	if (!s)
		return gw_err_set(err, ENOMEM, "serialise %s message", mig_type_name(type));
	return mig_send(c, type, s, (uint32_t)strlen(s), err);
}

static int parse_object(const struct mig_msg *m, struct json_object **out, struct gw_err *err)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return gw_err_set(err, ENOMEM, "out of memory");
	struct json_object *o = json_tokener_parse_ex(tok, m->payload, (int)m->len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || je != json_tokener_success || used != m->len) {
		json_object_put(o);
		return gw_err_set(err, EPROTO, "%s message is not valid JSON%s%s",
				  mig_type_name(m->type), je ? ": " : " (trailing bytes)",
				  je ? json_tokener_error_desc(je) : "");
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return gw_err_set(err, EPROTO, "%s message is not a JSON object",
				  mig_type_name(m->type));
	}
	*out = o;
	return 0;
}

int mig_json_str(struct json_object *o, const char *key, char *buf, size_t cap,
		 struct gw_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return gw_err_set(err, EPROTO, "field \"%s\" missing or not a string", key);
	size_t n = (size_t)json_object_get_string_len(v);
	const char *s = json_object_get_string(v);
	if (n >= cap || strlen(s) != n)
		return gw_err_set(err, EPROTO, "field \"%s\" too long or contains NUL", key);
	memcpy(buf, s, n + 1);
	return 0;
}

int mig_json_u64(struct json_object *o, const char *key, uint64_t *out, struct gw_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return gw_err_set(err, EPROTO, "field \"%s\" missing or not an integer", key);
	errno = 0;
	int64_t i = json_object_get_int64(v);
	if (i < 0 || (errno == ERANGE && i == INT64_MAX))
		return gw_err_set(err, EPROTO, "field \"%s\" out of range", key);
	*out = (uint64_t)i;
	return 0;
}

int mig_json_bool(struct json_object *o, const char *key, int *out, struct gw_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return gw_err_set(err, EPROTO, "field \"%s\" missing or not a boolean", key);
	*out = json_object_get_boolean(v);
	return 0;
}

int mig_recv_json(struct mig_conn *c, uint16_t want, struct json_object **out,
		  struct gw_err *err)
{
	struct mig_msg m;
	int r = mig_recv(c, 0, &m, err);
	if (r < 0)
		return gw_err_prefix(err, "waiting for %s", mig_type_name(want));
	struct json_object *o = NULL;
	if (m.type != want && m.type != MIG_ABORT) {
		r = gw_err_set(err, EPROTO, "expected %s, got %s", mig_type_name(want),
			       mig_type_name(m.type));
		goto out;
	}
	if ((r = parse_object(&m, &o, err)) < 0)
		goto out;
	if (m.type == MIG_ABORT) {
		char reason[64] = "?", msg[512] = "";
		mig_json_str(o, "reason", reason, sizeof(reason), NULL);
		mig_json_str(o, "message", msg, sizeof(msg), NULL);
		json_object_put(o);
		r = gw_err_set(err, ECONNABORTED, "peer aborted: %s: %s", reason, msg);
		goto out;
	}
	*out = o;
out:
	mig_msg_free(&m);
	return r;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

int mig_send_stream(struct mig_conn *c, uint16_t data_type, uint16_t end_type, int in_fd,
		    struct gw_err *err)
{
	cleanup_free uint8_t *buf = malloc(MIG_CHUNK_SIZE);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t total = 0;
	int r = 0;
	if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		r = gw_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(in_fd, buf, MIG_CHUNK_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = gw_err_sys(err, errno, "read %s data", mig_type_name(data_type));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		total += (uint64_t)n;
		if ((r = mig_send(c, data_type, buf, (uint32_t)n, err)) < 0)
			goto out;
	}
	uint8_t dig[32];
	char dhex[65];
	EVP_DigestFinal_ex(md, dig, NULL);
	hex(dig, 32, dhex);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "size", json_object_new_int64((int64_t)total));
	json_object_object_add(o, "sha256", json_object_new_string(dhex));
	r = mig_send_json(c, end_type, o, err);
	json_object_put(o);
out:
	EVP_MD_CTX_free(md);
	return r;
}

int mig_recv_stream(struct mig_conn *c, uint16_t data_type, uint16_t end_type, int out_fd,
		    uint64_t max_bytes, struct gw_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t total = 0;
	int r;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		r = gw_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		struct mig_msg m;
		if ((r = mig_recv(c, 0, &m, err)) < 0)
			goto out;
		if (m.type == end_type || m.type == MIG_ABORT) {
			struct json_object *o;
			r = parse_object(&m, &o, err);
			mig_msg_free(&m);	/* m.type stays valid */
			if (r < 0)
				goto out;
			char want[65], got[65], reason[64] = "?", msg[512] = "";
			uint8_t dig[32];
			uint64_t size;
			if (m.type == MIG_ABORT) {
				mig_json_str(o, "reason", reason, sizeof(reason), NULL);
				mig_json_str(o, "message", msg, sizeof(msg), NULL);
				json_object_put(o);
				r = gw_err_set(err, ECONNABORTED, "peer aborted: %s: %s", reason, msg);
				goto out;
			}
			r = mig_json_u64(o, "size", &size, err);
			if (r == 0)
				r = mig_json_str(o, "sha256", want, sizeof(want), err);
			json_object_put(o);
			if (r < 0) {
				gw_err_prefix(err, "%s", mig_type_name(end_type));
				goto out;
			}
			EVP_DigestFinal_ex(md, dig, NULL);
			hex(dig, 32, got);
			if (size != total)
				r = gw_err_set(err, EBADMSG, "%s: received %llu bytes, sender sent %llu",
					       mig_type_name(end_type), (unsigned long long)total,
					       (unsigned long long)size);
			else if (strcmp(want, got))
				r = gw_err_set(err, EBADMSG, "%s: sha256 mismatch: received data hashes "
					       "to %s, sender says %s", mig_type_name(end_type), got,
					       want);
			goto out;
		}
		if (m.type != data_type) {
			r = gw_err_set(err, EPROTO, "expected %s or %s, got %s",
				       mig_type_name(data_type), mig_type_name(end_type),
				       mig_type_name(m.type));
			mig_msg_free(&m);
			goto out;
		}
		total += m.len;
		if (max_bytes && total > max_bytes) {
			mig_msg_free(&m);
			r = gw_err_set(err, EFBIG, "%s stream exceeds the limit of %llu bytes",
				       mig_type_name(data_type), (unsigned long long)max_bytes);
			goto out;
		}
		EVP_DigestUpdate(md, m.payload, m.len);
		r = gw_write_full(out_fd, m.payload, m.len);
		mig_msg_free(&m);
		if (r < 0) {
			gw_err_sys(err, -r, "write %s data", mig_type_name(data_type));
			goto out;
		}
	}
out:
	EVP_MD_CTX_free(md);
	return r;
}

int mig_send_file(struct mig_conn *c, const char *path, struct gw_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	int r = mig_send_stream(c, MIG_DISK_DATA, MIG_DISK_END, fd, err);
	return r < 0 ? gw_err_prefix(err, "send %s", path) : 0;
}

struct recv_arg {
	struct mig_conn *c;
	uint64_t max_bytes;
};

static int recv_into(int fd, void *arg, struct gw_err *err)
{
	struct recv_arg *a = arg;
	return mig_recv_stream(a->c, MIG_DISK_DATA, MIG_DISK_END, fd, a->max_bytes, err);
}

int mig_recv_file(struct mig_conn *c, const char *path, uint64_t max_bytes, struct gw_err *err)
{
	struct recv_arg a = { c, max_bytes };
	int r = gw_write_file_with(path, 0600, recv_into, &a, err);
	return r < 0 ? gw_err_prefix(err, "receive %s", path) : 0;
}
