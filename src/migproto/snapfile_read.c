/* The snapshot file reader (include/godwit/snapfile.h): everything is verified (header,
 * section table, digests) before any section is handed out. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>

#include "godwit/snapfile.h"
#include "godwit/util.h"
#include "godwit/version.h"
#include "snapfile_int.h"

struct snap_reader {
	int fd;
	char *name;
	struct snap_info info;
};

static const char *const sec_names[SNAP_SEC_KNOWN] = { "END", "CONFIG", "DISK", "STATE", "PAD",
								  "MAC" };

const char *snap_section_name(uint32_t type)
{
	return type < ARRAY_SIZE(sec_names) ? sec_names[type] : "unknown";
}

/* Hash len bytes at off in one pass over all of them (holes read as zeros), copying them to
 * out_fd when it is >= 0: the plain sha256, or the sparse digest. */
static int hash_range(struct snap_reader *r, uint64_t off, uint64_t len, int sparse,
		      int out_fd, uint8_t dig[32], struct gw_err *err)
{
	cleanup_free uint8_t *buf = malloc(COPY_BUF);
	EVP_MD_CTX *md = EVP_MD_CTX_new(), *top = sparse ? EVP_MD_CTX_new() : NULL;
	int ret = 0;
	if (!buf || !md || (sparse && !top) || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    (sparse && !EVP_DigestInit_ex(top, EVP_sha256(), NULL))) {
		ret = gw_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (sparse) {
		uint8_t h[16];
		memcpy(h, "GWSPARSE", 8);
		put_be(h + 8, len, 8);
		EVP_DigestUpdate(top, h, sizeof(h));
	}
	/* pieces never straddle a chunk: COPY_BUF divides SNAP_SPARSE_CHUNK */
	for (uint64_t rel = 0; rel < len;) {
		size_t n = len - rel < COPY_BUF ? (size_t)(len - rel) : COPY_BUF;
		if ((ret = gw_pread_full(r->fd, buf, n, off + rel)) < 0) {
			ret = gw_err_sys(err, -ret, "read %s at byte %llu", r->name,
					 (unsigned long long)(off + rel));
			goto out;
		}
		if (sparse)
			snap_hash_blocks(md, buf, n, rel);
		else
			EVP_DigestUpdate(md, buf, n);
		if (out_fd >= 0 && (ret = gw_write_full(out_fd, buf, n)) < 0) {
			ret = gw_err_sys(err, -ret, "write snapshot data");
			goto out;
		}
		rel += n;
		if (sparse && (rel % SNAP_SPARSE_CHUNK == 0 || rel == len)) {
			uint8_t d[32];
			EVP_DigestFinal_ex(md, d, NULL);
			EVP_DigestUpdate(top, d, sizeof(d));
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		}
	}
	EVP_DigestFinal_ex(sparse ? top : md, dig, NULL);
out:
	EVP_MD_CTX_free(md);
	EVP_MD_CTX_free(top);
	return ret;
}

/* A section's digest, by its flags, copying its data to out_fd when it is >= 0. */
static int section_digest(struct snap_reader *r, const struct snap_section *s, int out_fd,
			  uint8_t dig[32], struct gw_err *err)
{
	int sparse = !!(s->flags & SNAP_FLAG_SPARSE);
	if (!sparse || out_fd >= 0)
		return hash_range(r, s->offset, s->length, sparse, out_fd, dig, err);
	int ret = snap_sparse_digest(r->fd, s->offset, s->length, dig, err);
	return ret < 0 ? gw_err_prefix(err, "%s, section %s", r->name,
				       snap_section_name(s->type)) : 0;
}

static int verify(struct snap_reader *r, uint64_t size, uint32_t defer, struct gw_err *err)
{
	struct snap_info *in = &r->info;
	uint8_t h[SNAP_HDR_SIZE];
	if (size < SNAP_HDR_SIZE || gw_pread_full(r->fd, h, sizeof(h), 0) < 0)
		return gw_err_set(err, EINVAL, "%s: not a godwit snapshot (%llu bytes, too short)",
				  r->name, (unsigned long long)size);
	if (memcmp(h, SNAP_MAGIC, SNAP_MAGIC_LEN) || h[11] != 0)
		return gw_err_set(err, EINVAL, "%s: not a godwit snapshot (bad magic)", r->name);
	in->format_version = (uint32_t)get_be(h + 12, 4);
	if (in->format_version < SNAP_FORMAT_OLDEST || in->format_version > SNAP_FORMAT_VERSION)
		return gw_err_set(err, ENOTSUP, "%s: unsupported snapshot format version %u (this "
				  "godwit reads %u to %u)", r->name, in->format_version,
				  SNAP_FORMAT_OLDEST, SNAP_FORMAT_VERSION);
	in->created_ns = (int64_t)get_be(h + 16, 8);
	memcpy(in->godwit_version, h + 24, 32);
	in->godwit_version[32] = '\0';
	for (int i = 0; in->godwit_version[i]; i++)
		if (in->godwit_version[i] < 0x20 || in->godwit_version[i] > 0x7e)
			in->godwit_version[i] = '?';

	uint64_t off = SNAP_HDR_SIZE;
	uint32_t seen = 0;
	for (;;) {
		if (in->n_sections == SNAP_MAX_SECTIONS)
			return gw_err_set(err, EINVAL, "%s: more than %d sections", r->name,
					  SNAP_MAX_SECTIONS);
		uint8_t sh[SNAP_SEC_HDR_SIZE];
		if (size - off < SNAP_SEC_HDR_SIZE)
			return gw_err_set(err, EINVAL, "truncated snapshot %s: section header at byte "
					  "%llu ends at byte %llu, file has %llu (no END section)",
					  r->name, (unsigned long long)off,
					  (unsigned long long)off + SNAP_SEC_HDR_SIZE,
					  (unsigned long long)size);
		int e = gw_pread_full(r->fd, sh, sizeof(sh), off);
		if (e < 0)
			return gw_err_sys(err, -e, "read %s", r->name);
		struct snap_section *s = &in->sections[in->n_sections];
		s->type = (uint32_t)get_be(sh, 4);
		s->flags = (uint32_t)get_be(sh + 4, 4);
		s->length = get_be(sh + 8, 8);
		s->offset = off + SNAP_SEC_HDR_SIZE;
		memcpy(s->sha256, sh + 16, 32);
		const char *nm = snap_section_name(s->type);
		int known = s->type < SNAP_SEC_KNOWN;
		if (!known && !(s->flags & SNAP_FLAG_SKIPPABLE))
			return gw_err_set(err, EINVAL, "%s: unknown section type %u at byte %llu "
					  "(written by a newer godwit?)", r->name, s->type,
					  (unsigned long long)off);
		if (known && s->type != SNAP_SEC_PAD && (seen & (1u << s->type)))
			return gw_err_set(err, EINVAL, "%s: duplicate section %s", r->name, nm);
		/* only format 2's STATE may be sparse */
		uint32_t flags_ok = SNAP_FLAG_SKIPPABLE;
		if (s->type == SNAP_SEC_STATE && in->format_version >= 2)
			flags_ok |= SNAP_FLAG_SPARSE;
		if (s->flags & ~flags_ok)
			return gw_err_set(err, EINVAL, "%s: section %s at byte %llu has unknown "
					  "flags 0x%x", r->name, known ? nm : "(unknown)",
					  (unsigned long long)off, s->flags & ~flags_ok);
		if (s->length > size - s->offset)
			return gw_err_set(err, EINVAL, "truncated snapshot %s: section %s ends at byte "
					  "%llu, file has %llu", r->name, nm,
					  (unsigned long long)(s->offset + s->length),
					  (unsigned long long)size);
		if (s->type == SNAP_SEC_CONFIG && s->length > SNAP_MAX_CONFIG)
			return gw_err_set(err, EINVAL, "%s: CONFIG section of %llu bytes exceeds %u",
					  r->name, (unsigned long long)s->length, SNAP_MAX_CONFIG);
		uint8_t dig[32];
		int deferred = known && (defer & (1u << s->type));
		if (!deferred && (e = section_digest(r, s, -1, dig, err)) < 0)
			return e;
		if (!deferred && memcmp(dig, s->sha256, 32))
			return gw_err_set(err, EBADMSG, "%s: checksum mismatch in section %s",
					  r->name, known ? nm : "(unknown)");
		if (known)
			seen |= 1u << s->type;
		in->n_sections++;
		off = s->offset + s->length;
		if (s->type == SNAP_SEC_END)
			break;
	}
	if (off != size)
		return gw_err_set(err, EINVAL, "%s: %llu bytes of garbage after the END section",
				  r->name, (unsigned long long)(size - off));
	if (!(seen & (1u << SNAP_SEC_CONFIG)) || !(seen & (1u << SNAP_SEC_STATE)))
		return gw_err_set(err, EINVAL, "%s: snapshot lacks a %s section", r->name,
				  seen & (1u << SNAP_SEC_CONFIG) ? "STATE" : "CONFIG");
	return 0;
}

int snap_open_fd_ex(int fd, const char *name, uint32_t defer, struct snap_reader **out,
		    struct gw_err *err)
{
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return gw_err_set(err, ENOMEM, "out of memory");
	r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	r->name = strdup(name);
	if (r->fd < 0 || !r->name) {
		int e = r->fd < 0 ? errno : ENOMEM;
		snap_close(r);
		return gw_err_sys(err, e, "open %s", name);
	}
	struct stat st;
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snap_close(r);
		return gw_err_set(err, EINVAL, "%s: not a regular file", name);
	}
	int ret = verify(r, (uint64_t)st.st_size, defer, err);
	if (ret < 0) {
		snap_close(r);
		return ret;
	}
	*out = r;
	return 0;
}

int snap_open_fd(int fd, const char *name, struct snap_reader **out, struct gw_err *err)
{
	return snap_open_fd_ex(fd, name, 0, out, err);
}

int snap_open_ex(const char *path, uint32_t defer, struct snap_reader **out,
		 struct gw_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open snapshot %s", path);
	return snap_open_fd_ex(fd, path, defer, out, err);
}

int snap_open(const char *path, struct snap_reader **out, struct gw_err *err)
{
	return snap_open_ex(path, 0, out, err);
}

void snap_close(struct snap_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->name);
	free(r);
}

int snap_reader_fd(const struct snap_reader *r)
{
	return r->fd;
}

const struct snap_info *snap_info(const struct snap_reader *r)
{
	return &r->info;
}

const struct snap_section *snap_find(const struct snap_reader *r, uint32_t type)
{
	for (int i = 0; i < r->info.n_sections; i++)
		if (r->info.sections[i].type == type)
			return &r->info.sections[i];
	return NULL;
}

static int need(struct snap_reader *r, uint32_t type, const struct snap_section **s,
		struct gw_err *err)
{
	*s = type != SNAP_SEC_END ? snap_find(r, type) : NULL;
	return *s ? 0 : gw_err_set(err, ENOENT, "%s: no %s section", r->name,
				   snap_section_name(type));
}

int snap_read_config(struct snap_reader *r, char **json, size_t *len, struct gw_err *err)
{
	const struct snap_section *s;
	int ret = need(r, SNAP_SEC_CONFIG, &s, err);
	if (ret < 0)
		return ret;
	cleanup_free char *buf = malloc((size_t)s->length + 1);
	if (!buf)
		return gw_err_set(err, ENOMEM, "out of memory");
	if ((ret = gw_pread_full(r->fd, buf, (size_t)s->length, s->offset)) < 0)
		return gw_err_sys(err, -ret, "read CONFIG of %s", r->name);
	uint8_t dig[32];
	EVP_Digest(buf, (size_t)s->length, dig, NULL, EVP_sha256(), NULL);
	if (memcmp(dig, s->sha256, 32))
		return gw_err_set(err, EBADMSG, "%s: checksum mismatch in section CONFIG (file "
				  "changed after it was verified)", r->name);
	buf[s->length] = '\0';
	if (len)
		*len = (size_t)s->length;
	*json = steal_ptr(buf);
	return 0;
}

int snap_verify_section(struct snap_reader *r, uint32_t type, struct gw_err *err)
{
	const struct snap_section *s;
	uint8_t dig[32];
	int ret = need(r, type, &s, err);
	if (ret == 0)
		ret = section_digest(r, s, -1, dig, err);
	if (ret < 0)
		return ret;
	if (memcmp(dig, s->sha256, 32))
		return gw_err_set(err, EBADMSG, "%s: checksum mismatch in section %s", r->name,
				  snap_section_name(type));
	return 0;
}

int snap_stream_fd(struct snap_reader *r, uint32_t type, int fd, struct gw_err *err)
{
	const struct snap_section *s;
	uint8_t dig[32];
	int ret = need(r, type, &s, err);
	if (ret == 0)
		ret = section_digest(r, s, fd, dig, err);
	if (ret < 0)
		return ret;
	if (memcmp(dig, s->sha256, 32))
		return gw_err_set(err, EBADMSG, "%s: checksum mismatch in section %s (file changed "
				  "after it was verified)", r->name, snap_section_name(type));
	return 0;
}

struct extract_arg {
	struct snap_reader *r;
	uint32_t type;
};

static int extract_into(int fd, void *arg, struct gw_err *err)
{
	struct extract_arg *a = arg;
	return snap_stream_fd(a->r, a->type, fd, err);
}

int snap_extract_file(struct snap_reader *r, uint32_t type, const char *path,
		      struct gw_err *err)
{
	struct extract_arg a = { r, type };
	return gw_write_file_with(path, 0600, extract_into, &a, err);
}
