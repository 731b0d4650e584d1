/* Small helpers shared by several subsystems: cleanup attributes, whole-file I/O, paths,
 * time. Nothing here knows about containers, images or QEMU. */
#ifndef GODWIT_UTIL_H
#define GODWIT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/types.h>

#include "godwit/err.h"

static inline void gw_freep(void *p) { free(*(void **)p); }
static inline void gw_closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void gw_fclosep(FILE **f) { if (*f) fclose(*f); }
#define cleanup_free __attribute__((cleanup(gw_freep)))
#define cleanup_close __attribute__((cleanup(gw_closep)))
#define cleanup_fclose __attribute__((cleanup(gw_fclosep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Take ownership out of a cleanup variable: `return steal_ptr(p);` */
#define steal_ptr(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define steal_fd(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* Read a whole file (at most max bytes, else -EFBIG) into a NUL-terminated malloc'd buffer. */
int gw_read_file(const char *path, size_t max, char **out, size_t *len, struct gw_err *err);

/* v is a JSON string equal to s: false for no value, JSON null or any other type (whose
 * json_object_get_string would be NULL or a rendering, never to be compared as a name). */
struct json_object;
int gw_json_streq(struct json_object *v, const char *s);

/* Write data to path atomically (tmp file + fsync + rename), mode as given. */
int gw_write_file(const char *path, const void *data, size_t len, mode_t mode,
		  struct gw_err *err);

/* Write path atomically from fill(fd, arg, err): into PATH.tmp.PID (created exclusively,
 * never through a symlink), fsync, rename over path; on any failure the temporary goes and
 * path is untouched. Returns fill's error or the file's. */
int gw_write_file_with(const char *path, mode_t mode,
		       int (*fill)(int fd, void *arg, struct gw_err *err), void *arg,
		       struct gw_err *err);

/* write()/read() the whole buffer, retrying on EINTR and short counts. read_full returns
 * -EPIPE when the peer closes before len bytes. */
int gw_write_full(int fd, const void *buf, size_t len);
int gw_read_full(int fd, void *buf, size_t len);
/* The same at offset off (pwrite/pread): the file position does not move. */
int gw_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int gw_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Call fn(dfd, entry, arg) for each entry of the directory name under at (not following a
 * symlink; "." and ".." skipped; dfd is the directory's fd), until fn returns non-zero, which
 * is returned. An error opening the directory is set in err. */
int gw_dir_each(int at, const char *name, int (*fn)(int dfd, const char *entry, void *arg),
		void *arg, struct gw_err *err);

/* The state root and its images/, containers/ and volumes/: made 0700 if missing, tightened to
 * 0700 if not, refused unless owned by the effective user (src/common/stateroot.c). */
int gw_root_prepare(const char *root, struct gw_err *err);

/* mkdir -p with mode for created dirs. */
int gw_mkdir_p(const char *path, mode_t mode, struct gw_err *err);

/* An exclusive flock on DIR/lock (the directory made if missing, the file created, never
 * through a symlink): the fd, whose close releases it. For read-decide-write under a root. */
int gw_lock_dir(const char *dir, struct gw_err *err);

/* rm -rf (does not follow symlinks, stays on one file system). */
int gw_rm_rf(const char *path, struct gw_err *err);

/* Copy a regular file (sparse-aware enough: uses copy_file_range when it can). */
int gw_copy_file(const char *src, const char *dst, struct gw_err *err);

/* Monotonic and wall-clock time in nanoseconds. */
int64_t gw_now_mono_ns(void);
int64_t gw_now_real_ns(void);
/* Lower a poll timeout (-1: none) to what is left until a monotonic deadline, rounded up. */
void gw_timeout_lower(int *timeout_ms, int64_t deadline_ns);

/* Format a wall-clock time in ns as RFC 3339 UTC with nanoseconds
 * ("2026-11-25T18:56:04.123456789Z"); buf needs 36 bytes. */
void gw_fmt_rfc3339(int64_t real_ns, char buf[36]);

/* Parse sizes like "512", "512M", "1G", "1.5GiB" into bytes (suffix-less = default_unit bytes). */
int gw_parse_size(const char *s, uint64_t default_unit, uint64_t *out);

/* Parse durations like "20ms", "2s", "1m" into nanoseconds (suffix-less = ms). */
int gw_parse_duration(const char *s, int64_t *out_ns);

/* asprintf that aborts on OOM is not allowed below main: returns NULL on failure. */
/* s for a terminal: every control byte (below 0x20, and 0x7f) as \xNN, so that a string a
 * peer or a guest chose (an error message, a status detail) cannot move the cursor, retitle
 * the window or hide text; cut to fit out (n >= 1) and always terminated. */
void gw_escape_ctl(const char *s, char *out, size_t n);
char *gw_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* base64 without line breaks (src/common/b64.c). Encode: a malloc'd NUL-terminated text, NULL
 * when out of memory or too long. Decode: the bytes, malloc'd (*out, *len); -EINVAL when the
 * text is not base64 (a length not a multiple of 4, a character outside the alphabet, padding
 * other than one or two '=' at the end), -ENOMEM. */
char *gw_b64_encode(const void *data, size_t len);
int gw_b64_decode(const char *b64, unsigned char **out, size_t *len);

/* Validate a container or image name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}. */
int gw_valid_name(const char *name);
/* A network interface name godwit accepts: 1 to 15 of [a-zA-Z0-9_.-], not "." or "..". */
int gw_valid_ifname(const char *name);

#endif
