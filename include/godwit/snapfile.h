/* The snapshot file: one self-describing file holding a container's config, its overlay disk
 * and QEMU's state stream (used by `godwit snapshot`/`restore` and static migration to a file).
 *
 * Layout (all integers big-endian):
 *   header  56 bytes: "GODWITSNAP\n" (11) | 0 (1) | format version u32 | created ns u64 |
 *                     godwit version, NUL-padded (32)
 *   section 48-byte header: type u32 | flags u32 | data length u64 | sha256 of the data (32),
 *           then `length` bytes of data. Sections: CONFIG (JSON, <= 1 MiB), DISK (qcow2
 *           overlay), STATE (QEMU's migration stream), ... END (length 0) last; the file ends
 *           exactly where END ends. A section type this godwit does not know is an error unless
 *           its flags have SNAP_FLAG_SKIPPABLE (the format only grows).
 * Writing streams: QEMU's state comes through a pipe of unknown length, so a section's header
 * is written as a placeholder and patched (pwrite) once its data is complete. The file is
 * written as PATH.tmp and renamed over PATH only after END and fsync: a failure never touches
 * an existing good snapshot.
 * Reading verifies first, then streams: snap_open() reads the whole file once and checks the
 * header, every section's bounds and sha256 before it returns, so restore never feeds QEMU a
 * corrupt state (a guest started from a half-checked stream cannot be taken back). Extraction
 * and streaming hash again while copying and fail if the file changed since snap_open. */
#ifndef GODWIT_SNAPFILE_H
#define GODWIT_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

#define SNAP_MAGIC "GODWITSNAP\n"
#define SNAP_MAGIC_LEN 11
#define SNAP_FORMAT_VERSION 1
#define SNAP_HDR_SIZE 56
#define SNAP_SEC_HDR_SIZE 48
#define SNAP_MAX_SECTIONS 16
#define SNAP_MAX_CONFIG (1u << 20)
#define SNAP_FLAG_SKIPPABLE 1u

enum snap_section_type {
	SNAP_SEC_END = 0,
	SNAP_SEC_CONFIG = 1,
	SNAP_SEC_DISK = 2,
	SNAP_SEC_STATE = 3,
};

struct snap_section {
	uint32_t type;
	uint32_t flags;
	uint64_t offset;	/* of the data, from the start of the file */
	uint64_t length;
	uint8_t sha256[32];
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
/* Write END, fsync, rename PATH.tmp to PATH; frees w in every case. Requires CONFIG and STATE. */
int snap_commit(struct snap_writer *w, struct gw_err *err);
/* Give up: remove PATH.tmp, free w (NULL is fine). */
void snap_discard(struct snap_writer *w);

/* Open and fully verify a snapshot (see above). snap_open_fd dups fd; name is for messages. */
int snap_open(const char *path, struct snap_reader **out, struct gw_err *err);
int snap_open_fd(int fd, const char *name, struct snap_reader **out, struct gw_err *err);
void snap_close(struct snap_reader *r);
const struct snap_info *snap_info(const struct snap_reader *r);
/* The section of that type, or NULL. */
const struct snap_section *snap_find(const struct snap_reader *r, uint32_t type);
/* The CONFIG section as a NUL-terminated malloc'd string. */
int snap_read_config(struct snap_reader *r, char **json, size_t *len, struct gw_err *err);
/* Write a section to path (via path.tmp, renamed when the copy hashed right). */
int snap_extract_file(struct snap_reader *r, uint32_t type, const char *path,
		      struct gw_err *err);
/* Write a section to fd (e.g. a pipe feeding QEMU's -incoming fd:/exec:). */
int snap_stream_fd(struct snap_reader *r, uint32_t type, int fd, struct gw_err *err);

#endif
