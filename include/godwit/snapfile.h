/* The snapshot file: one self-describing file holding a container's config, its overlay disk
 * and QEMU's state stream (used by `godwit snapshot`/`restore` and static migration to a file).
 *
 * Layout (all integers big-endian):
 *   header  56 bytes: "GODWITSNAP\n" (11) | 0 (1) | format version u32 | created ns u64 |
 *                     godwit version, NUL-padded (32)
 *   section 48-byte header: type u32 | flags u32 | data length u64 | digest of the data (32),
 *           then `length` bytes of data. Sections: CONFIG (JSON, <= 1 MiB), DISK (qcow2
 *           overlay), STATE (QEMU's migration stream), PAD (filler), ... END (length 0) last;
 *           the file ends exactly where END ends. Any order; each known type at most once. A
 *           section type this godwit does not know is an error unless its flags have
 *           SNAP_FLAG_SKIPPABLE (the format only grows).
 * Format 2 (written now): STATE holds a mapped-ram stream that QEMU wrote in place, at a
 * 4 KiB-aligned offset (a PAD section fills the gap after the header) and with holes where
 * the guest's pages are zero; its digest is the sparse digest (SNAP_FLAG_SPARSE, below), so
 * that neither the writer nor the reader reads the holes. Format 1 (still read): STATE is a
 * plain migration stream, every digest a plain sha256.
 * Digests: the plain sha256 of the data; or, with SNAP_FLAG_SPARSE, the sparse digest:
 *   D_k = sha256 over each 4 KiB block of chunk k (16 MiB chunks from the data's start; the
 *         last block may be shorter) that is not all zero: its index from the data's start
 *         (u64) then its bytes;
 *   digest = sha256("GWSPARSE" | data length u64 | D_0 | D_1 | ... | D_n-1).
 * It pins every byte (a zero block is implied by its absence, and the length is hashed), it
 * does not depend on where the file system keeps holes (a written zero block hashes like a
 * hole), and chunks hash in parallel.
 * Writing: sections from buffers and files are written in order, each header a placeholder
 * patched (pwrite) once its data is complete. A "placed" section is written by someone else
 * (QEMU, through a file: URI with this offset) and adopted afterwards: it runs to the end of
 * the file, is hashed where it lies (in threads, while the file is flushed to disk), and the
 * next sections follow it. The file is written as PATH.tmp and renamed over PATH only after
 * END and fsync: a failure never touches an existing good snapshot.
 * Reading verifies first: snap_open() checks the header, every section's bounds and digest
 * before it returns, so restore never feeds QEMU a corrupt state (a guest started from a
 * half-checked stream cannot be taken back). snap_open_ex() may leave some sections to
 * snap_verify_section() (restore checks STATE while QEMU starts, and only then lets QEMU read
 * it). Extraction and streaming hash again while copying and fail if the file changed. */
#ifndef GODWIT_SNAPFILE_H
#define GODWIT_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

#define SNAP_MAGIC "GODWITSNAP\n"
#define SNAP_MAGIC_LEN 11
#define SNAP_FORMAT_VERSION 2
#define SNAP_FORMAT_OLDEST 1	/* the oldest format this godwit reads */
#define SNAP_HDR_SIZE 56
#define SNAP_SEC_HDR_SIZE 48
#define SNAP_MAX_SECTIONS 16
#define SNAP_MAX_CONFIG (1u << 20)
#define SNAP_FLAG_SKIPPABLE 1u
#define SNAP_FLAG_SPARSE 2u	/* the digest is the sparse digest (format 2) */
#define SNAP_SPARSE_BLOCK 4096u
#define SNAP_SPARSE_CHUNK (16u << 20)
/* where a placed section's data starts (QEMU's mapped-ram pages then sit on page boundaries) */
#define SNAP_PLACE_ALIGN 4096u

enum snap_section_type {
	SNAP_SEC_END = 0,
	SNAP_SEC_CONFIG = 1,
	SNAP_SEC_DISK = 2,
	SNAP_SEC_STATE = 3,
	SNAP_SEC_PAD = 4,	/* filler before an aligned section (zeros) */
	/* HMAC-SHA256 (32 bytes) with the host's snapshot key over the file's header and every
	 * section header before it (snapfile_mac.c); written last before END, with
	 * SNAP_FLAG_SKIPPABLE, when a key is set */
	SNAP_SEC_MAC = 5,
};
#define SNAP_KEY_MIN 32
#define SNAP_KEY_MAX 1024

struct snap_section {
	uint32_t type;
	uint32_t flags;
	uint64_t offset;	/* of the data, from the start of the file */
	uint64_t length;
	uint8_t sha256[32];	/* the digest: plain or sparse (flags) */
};

struct snap_info {
	uint32_t format_version;
	int64_t created_ns;
	char godwit_version[33];
	int n_sections;		/* END included */
	struct snap_section sections[SNAP_MAX_SECTIONS];
};

struct snap_writer;
struct snap_reader;

/* Name of a section type ("STATE"), or "unknown". */
const char *snap_section_name(uint32_t type);

/* Start writing the snapshot PATH (creates PATH.tmp). */
int snap_create(const char *path, struct snap_writer **out, struct gw_err *err);
/* One section at a time: begin, write/copy any number of times, end. */
int snap_section_begin(struct snap_writer *w, uint32_t type, struct gw_err *err);
int snap_section_write(struct snap_writer *w, const void *buf, size_t len, struct gw_err *err);
/* Copy fd until EOF into the open section (a pipe from QEMU, or a file). */
int snap_section_copy_fd(struct snap_writer *w, int fd, struct gw_err *err);
int snap_section_end(struct snap_writer *w, struct gw_err *err);
/* Whole sections from a buffer or a file. */
int snap_add_buffer(struct snap_writer *w, uint32_t type, const void *buf, size_t len,
		    struct gw_err *err);
int snap_add_file(struct snap_writer *w, uint32_t type, const char *path, struct gw_err *err);
/* Reserve a section that someone else writes: its data starts at *data_off (aligned to
 * SNAP_PLACE_ALIGN; a PAD section fills the gap) and runs to the end of the file. Nothing else
 * may be written until snap_section_adopt. */
int snap_section_place(struct snap_writer *w, uint32_t type, uint64_t *data_off,
		       struct gw_err *err);
/* The placed section's data is complete (the file ends where it ends): start hashing it
 * (sparse digest, in threads) and flushing the file to disk, both in the background, and go
 * on with the next sections; snap_commit waits for both and patches the header. */
int snap_section_adopt(struct snap_writer *w, struct gw_err *err);
/* The file being written (PATH.tmp), for reopening it for QEMU; owned by w. */
int snap_writer_fd(const struct snap_writer *w);
/* Give the snapshot a MAC section with this key (copied) at snap_commit. */
int snap_set_key(struct snap_writer *w, const uint8_t *key, size_t len, struct gw_err *err);
/* Write END, fsync, rename PATH.tmp to PATH; frees w in every case. Requires CONFIG and STATE. */
int snap_commit(struct snap_writer *w, struct gw_err *err);
/* Give up: remove PATH.tmp, free w (NULL is fine). */
void snap_discard(struct snap_writer *w);

/* Open and fully verify a snapshot (see above). snap_open_fd dups fd; name is for messages. */
int snap_open(const char *path, struct snap_reader **out, struct gw_err *err);
int snap_open_fd(int fd, const char *name, struct snap_reader **out, struct gw_err *err);
/* The same, but the digests of the sections whose type's bit (1 << type) is in defer are not
 * checked here: the caller must snap_verify_section() each before using it. */
int snap_open_ex(const char *path, uint32_t defer, struct snap_reader **out,
		 struct gw_err *err);
int snap_open_fd_ex(int fd, const char *name, uint32_t defer, struct snap_reader **out,
		    struct gw_err *err);
/* Check one section's digest (the sparse digest: its data only, holes skipped, in threads). */
int snap_verify_section(struct snap_reader *r, uint32_t type, struct gw_err *err);
/* The open file (read-only; e.g. for QEMU's file: URI at a section's offset); owned by r. */
int snap_reader_fd(const struct snap_reader *r);
void snap_close(struct snap_reader *r);
const struct snap_info *snap_info(const struct snap_reader *r);
/* With a key: 0 if the file's MAC section matches it, else -EPERM ("carries no HMAC", "does
 * not match"); without (NULL): 0. */
int snap_check_mac(struct snap_reader *r, const uint8_t *key, size_t key_len,
		   struct gw_err *err);
/* A snapshot key from a file: SNAP_KEY_MIN..SNAP_KEY_MAX bytes, a regular file of this user's
 * that no one else can read (GODWIT_SNAPSHOT_KEY names it). */
int snap_key_load(const char *path, uint8_t key[SNAP_KEY_MAX], size_t *len, struct gw_err *err);
/* The section of that type, or NULL. */
const struct snap_section *snap_find(const struct snap_reader *r, uint32_t type);
/* The CONFIG section as a NUL-terminated malloc'd string. */
int snap_read_config(struct snap_reader *r, char **json, size_t *len, struct gw_err *err);
/* Write a section to path (via path.tmp, renamed when the copy hashed right). */
int snap_extract_file(struct snap_reader *r, uint32_t type, const char *path,
		      struct gw_err *err);
/* Write a section to fd (e.g. a pipe), holes as zeros. */
int snap_stream_fd(struct snap_reader *r, uint32_t type, int fd, struct gw_err *err);

#endif
