/* The migration protocol between the source and destination shims (docs/migration-protocol.md):
 * framing with a checked 20-byte header, JSON control messages, and the DISK/STATE byte streams
 * with a trailing SHA-256. Used by src/shim/mig_source.c and mig_destination.c. */
#ifndef GODWIT_MIGPROTO_H
#define GODWIT_MIGPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "godwit/err.h"

#define MIG_MAGIC 0x47574D31u		/* "GWM1" */
#define MIG_VERSION 2		/* 2: every move mirrors its disk over NBD (PREPARE carries the port) */
#define MIG_HDR_SIZE 20
#define MIG_MAX_JSON (1u << 20)		/* control messages */
#define MIG_MAX_CHUNK (16u << 20)	/* DISK_DATA / STATE_DATA */
#define MIG_CHUNK_SIZE (1u << 20)	/* what mig_send_stream sends per message */
#define MIG_DEFAULT_TIMEOUT_MS 30000

enum mig_type {
	MIG_HELLO = 1,
	MIG_CONFIG = 2,
	MIG_PREPARE = 3,
	MIG_DISK_DATA = 4,
	MIG_DISK_END = 5,
	MIG_STATE_DATA = 6,
	MIG_STATE_END = 7,
	MIG_RAM_BEGIN = 8,
	MIG_DONE = 9,
	MIG_RUNNING = 10,
	MIG_COMMIT = 11,
	MIG_COMMIT_ACK = 12,
	MIG_ABORT = 13,
	MIG_TYPE_MAX = 13,
};

/* Feature bits carried in HELLO. */
#define MIG_FEAT_OFFLINE (1u << 0)
#define MIG_FEAT_LIVE (1u << 1)
#define MIG_FEAT_POSTCOPY (1u << 2)
#define MIG_FEAT_XBZRLE (1u << 3)
#define MIG_FEAT_ALL (MIG_FEAT_OFFLINE | MIG_FEAT_LIVE | MIG_FEAT_POSTCOPY | MIG_FEAT_XBZRLE)

struct mig_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t length;
	uint32_t seq;
	uint32_t crc;		/* CRC-32C of the payload */
};

/* One end of the connection: the fd (not owned) and the per-direction sequence numbers. */
struct mig_conn {
	int fd;
	uint32_t tx_seq;
	uint32_t rx_seq;
	int timeout_ms;		/* deadline for one whole send or receive; <= 0 = default */
	/* How to wait until fd is ready for events (POLLIN/POLLOUT) or timeout_ms passed:
	 * nonzero when ready. NULL (mig_conn_init): poll. The shim's migration jobs give its
	 * event loop the wait (job_wait). */
	int (*wait)(void *arg, int fd, short events, int timeout_ms);
	void *wait_arg;
	/* Set for a connection inside TLS (gw_tls_io): one read or write of at most len bytes,
	 * as gw_tls_io answers (-EAGAIN with *events to wait for). NULL: the fd itself. */
	ssize_t (*io)(void *arg, void *buf, size_t len, int writing, short *events);
	void *io_arg;
};

/* A received message; payload is malloc'd and NUL-terminated (one extra byte). */
struct mig_msg {
	uint16_t type;
	uint32_t len;
	uint32_t seq;
	char *payload;
};

/* The container config sent in CONFIG (docs §3). Strings are owned by the struct. */
#define MIG_MAX_DISKS 8
#define MIG_MAX_NICS 8
enum mig_kind { MIG_KIND_OFFLINE = 0, MIG_KIND_LIVE = 1, MIG_KIND_POSTCOPY = 2 };
struct mig_config {
	char name[65];
	char image[72];		/* "sha256:" + 64 hex */
	uint64_t memory;
	int cpus;
	int n_disks;
	struct { char id[33]; uint64_t size; } disks[MIG_MAX_DISKS];
	int n_nics;
	char macs[MIG_MAX_NICS][18];
	enum mig_kind kind;
	int cap_xbzrle, cap_postcopy, cap_auto_converge;
	struct json_object *agent;	/* opaque agent-link state (owned ref), may be NULL */
};

/* Set up a connection on an already connected fd (the fd stays the caller's). */
void mig_conn_init(struct mig_conn *c, int fd, int timeout_ms);

/* CRC-32C (Castagnoli) of buf, continuing from crc (start with 0). */
uint32_t mig_crc32c(uint32_t crc, const void *buf, size_t len);

/* Name of a message type ("CONFIG"), or "unknown". */
const char *mig_type_name(uint16_t type);

/* Encode h into out (MIG_HDR_SIZE bytes, big-endian). */
void mig_hdr_encode(const struct mig_hdr *h, uint8_t out[MIG_HDR_SIZE]);

/* Decode and validate a header: magic, version, known type, length bound for the type.
 * Does not check seq or crc (mig_recv does, it knows the expectation and the payload). */
int mig_hdr_decode(const uint8_t in[MIG_HDR_SIZE], struct mig_hdr *h, struct gw_err *err);

/* Send one message (type, payload of len bytes) with the next sequence number. */
int mig_send(struct mig_conn *c, uint16_t type, const void *payload, uint32_t len,
	     struct gw_err *err);

/* Receive one whole message within timeout_ms (<= 0: the connection's timeout). Checks the
 * header, the sequence number and the CRC. On success out->payload must be freed with
 * mig_msg_free. A peer that closes cleanly between messages gives -ECONNRESET. */
int mig_recv(struct mig_conn *c, int timeout_ms, struct mig_msg *out, struct gw_err *err);
void mig_msg_free(struct mig_msg *m);

/* Send a JSON control message. */
int mig_send_json(struct mig_conn *c, uint16_t type, struct json_object *obj, struct gw_err *err);

/* Receive a message that must be of type `want` with a JSON object payload; an ABORT from the
 * peer gives -ECONNABORTED with "peer aborted: REASON: MESSAGE"; another type is -EPROTO. */
int mig_recv_json(struct mig_conn *c, uint16_t want, struct json_object **out,
		  struct gw_err *err);

/* Required-field getters for received JSON: a missing or mistyped field is -EPROTO with the
 * field's name in the message. mig_json_str copies at most cap-1 bytes (longer is an error). */
int mig_json_str(struct json_object *o, const char *key, char *buf, size_t cap,
		 struct gw_err *err);
int mig_json_u64(struct json_object *o, const char *key, uint64_t *out, struct gw_err *err);
int mig_json_bool(struct json_object *o, const char *key, int *out, struct gw_err *err);

/* HELLO exchange (both sides call it: send then receive). Fails on a protocol version
 * mismatch; *common gets the intersection of feature bits; peer_sw (64 bytes) the peer's
 * software version. */
int mig_hello(struct mig_conn *c, uint64_t features, uint64_t *common, char peer_sw[64],
	      struct gw_err *err);

/* CONFIG: build/parse with every field validated (docs §3). */
struct json_object *mig_config_to_json(const struct mig_config *cfg);
int mig_config_from_json(struct json_object *o, struct mig_config *cfg, struct gw_err *err);
void mig_config_free(struct mig_config *cfg);
const char *mig_kind_name(enum mig_kind k);

/* PREPARE reply. reason NULL = ok. mig_recv_prepare returns 0 when accepted, -EACCES with
 * "destination refused: REASON: MESSAGE" when refused. */
int mig_send_prepare(struct mig_conn *c, const char *reason, const char *message,
		     struct gw_err *err);
int mig_recv_prepare(struct mig_conn *c, struct gw_err *err);

/* ABORT with reason and message (best effort: errors are returned but usually ignored). */
int mig_send_abort(struct mig_conn *c, const char *reason, const char *message,
		   struct gw_err *err);

/* Stream everything readable from in_fd (file or pipe, until EOF) as data_type chunks, then an
 * end_type message with the size and SHA-256. MIG_DISK_DATA/END or MIG_STATE_DATA/END. */
int mig_send_stream(struct mig_conn *c, uint16_t data_type, uint16_t end_type, int in_fd,
		    struct gw_err *err);

/* Receive such a stream, writing the bytes to out_fd, and verify size and SHA-256 at the end.
 * Returns -EBADMSG on mismatch: the caller must discard what was written (see mig_recv_file).
 * max_bytes bounds the total (0 = no bound). */
int mig_recv_stream(struct mig_conn *c, uint16_t data_type, uint16_t end_type, int out_fd,
		    uint64_t max_bytes, struct gw_err *err);

/* Send a file as DISK chunks; receive one into path (via path.tmp, renamed only once the
 * SHA-256 is verified; the tmp file is removed on any failure). */
int mig_send_file(struct mig_conn *c, const char *path, struct gw_err *err);
int mig_recv_file(struct mig_conn *c, const char *path, uint64_t max_bytes, struct gw_err *err);

#endif
