/* The snapshot file format (include/godwit/snapfile.h documents the layout and the choices):
 * a writer that patches each section's length and digest once its data is complete (a placed
 * section, written by QEMU, is hashed in the background while the file goes to disk), the
 * sparse digest, and a reader that verifies everything before any section is handed out. */
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

#define COPY_BUF (1u << 20)	/* a multiple of SNAP_SPARSE_BLOCK */
#define MAX_HASH_THREADS 4

/* A background job of the writer: the placed section's digest, or the flush to disk. */
struct bg_job {
	pthread_t thread;
	int started;
	int ret;		/* its result, once joined */
	struct gw_err err;
};

struct snap_writer {
	int fd;
	char *path, *tmp;
	uint64_t pos;		/* end of what was written */
	int in_section;
	uint32_t type;
	uint64_t sec_hdr;	/* offset of the open section's header */
	uint64_t sec_len;
	EVP_MD_CTX *md;
	uint32_t seen;		/* bit per known section type */
	/* the placed section: reserved (placed), then adopted (its data complete) */
	int placed, adopted;
	uint32_t pl_type;
	uint64_t pl_hdr, pl_off, pl_len;
	uint8_t pl_dig[32];
	struct bg_job hash, flush;
};

struct snap_reader {
	int fd;
	char *name;
	struct snap_info info;
};

static const char *const sec_names[] = { "END", "CONFIG", "DISK", "STATE", "PAD" };

const char *snap_section_name(uint32_t type)
{
	return type < ARRAY_SIZE(sec_names) ? sec_names[type] : "unknown";
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- the sparse digest (snapfile.h) ------------------------------------------------------ */

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static uint64_t n_chunks(uint64_t len)
{
	return (len + SNAP_SPARSE_CHUNK - 1) / SNAP_SPARSE_CHUNK;
}

/* Hash the blocks of buf (data bytes from rel, a block boundary) that are not all zero. */
static void hash_blocks(EVP_MD_CTX *md, const uint8_t *buf, size_t n, uint64_t rel)
{
	for (size_t i = 0; i < n; i += SNAP_SPARSE_BLOCK) {
		size_t bl = n - i < SNAP_SPARSE_BLOCK ? n - i : SNAP_SPARSE_BLOCK;
		if (all_zero(buf + i, bl))
			continue;
		uint8_t idx[8];
		put_be(idx, (rel + i) / SNAP_SPARSE_BLOCK, 8);
		EVP_DigestUpdate(md, idx, sizeof(idx));
		EVP_DigestUpdate(md, buf + i, bl);
	}
}

/* D_k of the data at off (len bytes in all): only the file's data extents are read. */
static int sparse_chunk(int fd, uint64_t off, uint64_t len, uint64_t k, uint8_t *buf,
			EVP_MD_CTX *md, uint8_t dig[32])
{
	uint64_t pos = k * SNAP_SPARSE_CHUNK;
	uint64_t end = len - pos < SNAP_SPARSE_CHUNK ? len : pos + SNAP_SPARSE_CHUNK;
	if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		return -ENOMEM;
	while (pos < end) {
		/* the next data extent; a file system without SEEK_DATA is all data */
		off_t d = lseek(fd, (off_t)(off + pos), SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0 && errno != EINVAL)
			return -errno;
		uint64_t ds = d < 0 ? pos : (uint64_t)d - off, de = end;
		if (ds >= end)
			break;
		off_t h = d < 0 ? -1 : lseek(fd, d, SEEK_HOLE);
		if (h >= 0 && (uint64_t)h - off < end)
			de = (uint64_t)h - off;
		/* whole blocks covering [ds, de), none twice */
		uint64_t b = ds / SNAP_SPARSE_BLOCK * SNAP_SPARSE_BLOCK;
		if (b < pos)
			b = pos;
		uint64_t e = (de + SNAP_SPARSE_BLOCK - 1) / SNAP_SPARSE_BLOCK * SNAP_SPARSE_BLOCK;
		if (e > end)
			e = end;
		while (b < e) {
			size_t n = e - b < COPY_BUF ? (size_t)(e - b) : COPY_BUF;
			int r = gw_pread_full(fd, buf, n, off + b);
			if (r < 0)
				return r;
			hash_blocks(md, buf, n, b);
			b += n;
		}
		pos = e;
	}
	EVP_DigestFinal_ex(md, dig, NULL);
	return 0;
}

struct sparse_job {
	int fd;
	uint64_t off, len, n;
	atomic_uint_fast64_t next;	/* the next chunk to take */
	atomic_int ret;			/* the first failure (-errno) */
	uint8_t (*dig)[32];		/* D_k */
};

static void *sparse_worker(void *arg)
{
	struct sparse_job *j = arg;
	uint8_t *buf = malloc(COPY_BUF);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!buf || !md)
		atomic_store(&j->ret, -ENOMEM);
	while (atomic_load(&j->ret) == 0) {
		uint64_t k = atomic_fetch_add(&j->next, 1);
		if (k >= j->n)
			break;
		int r = sparse_chunk(j->fd, j->off, j->len, k, buf, md, j->dig[k]);
		if (r < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&j->ret, &zero, r);
		}
	}
	EVP_MD_CTX_free(md);
	free(buf);
	return NULL;
}

/* The sparse digest of len bytes of fd at off, in up to MAX_HASH_THREADS threads. */
static int sparse_digest(int fd, uint64_t off, uint64_t len, uint8_t dig[32],
			 struct gw_err *err)
{
	struct sparse_job j = { .fd = fd, .off = off, .len = len, .n = n_chunks(len) };
	j.dig = calloc(j.n ? j.n : 1, 32);
	if (!j.dig)
		return gw_err_set(err, ENOMEM, "out of memory");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t nt = cpus < 1 ? 1 : cpus > MAX_HASH_THREADS ? MAX_HASH_THREADS : (uint64_t)cpus;
	if (nt > j.n)
		nt = j.n;
	pthread_t t[MAX_HASH_THREADS];
	uint64_t started = 0;
	for (uint64_t i = 1; i < nt; i++, started++)
		if (pthread_create(&t[started], NULL, sparse_worker, &j) != 0)
			break;
	sparse_worker(&j);	/* this thread takes chunks too */
	for (uint64_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	int r = atomic_load(&j.ret);
	if (r == 0) {
		uint8_t h[16];
		memcpy(h, "GWSPARSE", 8);
		put_be(h + 8, len, 8);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
			EVP_DigestUpdate(md, h, sizeof(h));
			EVP_DigestUpdate(md, j.dig, j.n * 32);
			EVP_DigestFinal_ex(md, dig, NULL);
		} else {
			r = -ENOMEM;
		}
		EVP_MD_CTX_free(md);
	}
	free(j.dig);
	if (r == -EPIPE)
		return gw_err_set(err, EPIPE, "the file ends inside the data");
	return r < 0 ? gw_err_sys(err, -r, "hash the data") : 0;
}

int snap_create(const char *path, struct snap_writer **out, struct gw_err *err)
{
	struct snap_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return gw_err_set(err, ENOMEM, "out of memory");
	w->fd = -1;
	w->path = strdup(path);
	w->tmp = gw_strdup_printf("%s.tmp", path);
	w->md = EVP_MD_CTX_new();
	if (!w->path || !w->tmp || !w->md) {
		snap_discard(w);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	w->fd = open(w->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = errno;
		free(w->tmp);
		w->tmp = NULL;	/* not ours to unlink */
		snap_discard(w);
		return gw_err_sys(err, e, "create snapshot %s.tmp", path);
	}
	uint8_t h[SNAP_HDR_SIZE] = { 0 };
	memcpy(h, SNAP_MAGIC, SNAP_MAGIC_LEN);
	put_be(h + 12, SNAP_FORMAT_VERSION, 4);
	put_be(h + 16, (uint64_t)gw_now_real_ns(), 8);
	strncpy((char *)h + 24, GODWIT_VERSION, 32);
	int r = gw_pwrite_full(w->fd, h, sizeof(h), 0);
	if (r < 0) {
		snap_discard(w);
		return gw_err_sys(err, -r, "write snapshot %s.tmp", path);
	}
	w->pos = sizeof(h);
	*out = w;
	return 0;
}

static int check_new_section(struct snap_writer *w, uint32_t type, struct gw_err *err)
{
	if (w->in_section || (w->placed && !w->adopted))
		return gw_err_set(err, EINVAL, "snapshot: section %s still open",
				  snap_section_name(w->in_section ? w->type : w->pl_type));
	if (type == SNAP_SEC_END || type >= ARRAY_SIZE(sec_names))
		return gw_err_set(err, EINVAL, "snapshot: cannot write section type %u", type);
	if (type != SNAP_SEC_PAD && (w->seen & (1u << type)))
		return gw_err_set(err, EINVAL, "snapshot: section %s written twice",
				  snap_section_name(type));
	return 0;
}

int snap_section_begin(struct snap_writer *w, uint32_t type, struct gw_err *err)
{
	int r = check_new_section(w, type, err);
	if (r < 0)
		return r;
	if (!EVP_DigestInit_ex(w->md, EVP_sha256(), NULL))
		return gw_err_set(err, ENOMEM, "snapshot: sha256 init failed");
	uint8_t h[SNAP_SEC_HDR_SIZE] = { 0 };	/* placeholder, patched by section_end */
	r = gw_pwrite_full(w->fd, h, sizeof(h), w->pos);
	if (r < 0)
		return gw_err_sys(err, -r, "write %s", w->tmp);
	w->in_section = 1;
	w->type = type;
	w->sec_hdr = w->pos;
	w->sec_len = 0;
	w->pos += sizeof(h);
	return 0;
}

int snap_section_write(struct snap_writer *w, const void *buf, size_t len, struct gw_err *err)
{
	if (!w->in_section)
		return gw_err_set(err, EINVAL, "snapshot: write outside a section");
	if (w->type == SNAP_SEC_CONFIG && w->sec_len + len > SNAP_MAX_CONFIG)
		return gw_err_set(err, EFBIG, "snapshot: CONFIG larger than %u bytes",
				  SNAP_MAX_CONFIG);
	int r = gw_pwrite_full(w->fd, buf, len, w->pos);
	if (r < 0)
		return gw_err_sys(err, -r, "write %s section of %s", snap_section_name(w->type),
				  w->tmp);
	EVP_DigestUpdate(w->md, buf, len);
	w->pos += len;
	w->sec_len += len;
	return 0;
}

int snap_section_copy_fd(struct snap_writer *w, int fd, struct gw_err *err)
{
	cleanup_free char *buf = malloc(COPY_BUF);
	if (!buf)
		return gw_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = read(fd, buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gw_err_sys(err, errno, "read %s data", snap_section_name(w->type));
		if (n == 0)
			return 0;
		int r = snap_section_write(w, buf, (size_t)n, err);
		if (r < 0)
			return r;
	}
}

static int write_sec_hdr(struct snap_writer *w, uint32_t type, uint32_t flags, uint64_t len,
			 const uint8_t dig[32], struct gw_err *err)
{
	uint8_t h[SNAP_SEC_HDR_SIZE] = { 0 };
	put_be(h, type, 4);
	put_be(h + 4, flags, 4);
	put_be(h + 8, len, 8);
	memcpy(h + 16, dig, 32);
	int r = gw_pwrite_full(w->fd, h, sizeof(h), w->sec_hdr);
	return r < 0 ? gw_err_sys(err, -r, "write %s", w->tmp) : 0;
}

int snap_section_end(struct snap_writer *w, struct gw_err *err)
{
	if (!w->in_section)
		return gw_err_set(err, EINVAL, "snapshot: no open section");
	uint8_t dig[32];
	EVP_DigestFinal_ex(w->md, dig, NULL);
	int r = write_sec_hdr(w, w->type, 0, w->sec_len, dig, err);
	if (r < 0)
		return r;
	w->in_section = 0;
	w->seen |= 1u << w->type;
	return 0;
}

int snap_add_buffer(struct snap_writer *w, uint32_t type, const void *buf, size_t len,
		    struct gw_err *err)
{
	int r = snap_section_begin(w, type, err);
	if (r == 0)
		r = snap_section_write(w, buf, len, err);
	return r < 0 ? r : snap_section_end(w, err);
}

int snap_add_file(struct snap_writer *w, uint32_t type, const char *path, struct gw_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	int r = snap_section_begin(w, type, err);
	if (r == 0)
		r = snap_section_copy_fd(w, fd, err);
	if (r < 0)
		return gw_err_prefix(err, "add %s", path);
	return snap_section_end(w, err);
}

int snap_section_place(struct snap_writer *w, uint32_t type, uint64_t *data_off,
		       struct gw_err *err)
{
	int r = check_new_section(w, type, err);
	if (r < 0)
		return r;
	if (w->placed)
		return gw_err_set(err, EINVAL, "snapshot: only one placed section");
	/* its header ends on the boundary; a PAD section (a header at least) fills the gap */
	uint64_t hdr = (w->pos + 2 * SNAP_SEC_HDR_SIZE + SNAP_PLACE_ALIGN - 1) /
		       SNAP_PLACE_ALIGN * SNAP_PLACE_ALIGN - SNAP_SEC_HDR_SIZE;
	static const uint8_t zeros[SNAP_PLACE_ALIGN];
	if ((r = snap_add_buffer(w, SNAP_SEC_PAD, zeros, hdr - w->pos - SNAP_SEC_HDR_SIZE,
				 err)) < 0)
		return r;
	uint8_t h[SNAP_SEC_HDR_SIZE] = { 0 };	/* placeholder, patched by snap_commit */
	if ((r = gw_pwrite_full(w->fd, h, sizeof(h), hdr)) < 0)
		return gw_err_sys(err, -r, "write %s", w->tmp);
	w->placed = 1;
	w->pl_type = type;
	w->pl_hdr = hdr;
	w->pl_off = w->pos = hdr + SNAP_SEC_HDR_SIZE;
	*data_off = w->pl_off;
	return 0;
}

static void *hash_job(void *arg)
{
	struct snap_writer *w = arg;
	w->hash.ret = sparse_digest(w->fd, w->pl_off, w->pl_len, w->pl_dig, &w->hash.err);
	return NULL;
}

static void *flush_job(void *arg)
{
	struct snap_writer *w = arg;
	if (fdatasync(w->fd) < 0)
		w->flush.ret = gw_err_sys(&w->flush.err, errno, "sync %s", w->tmp);
	return NULL;
}

static int bg_start(struct bg_job *j, void *(*fn)(void *), struct snap_writer *w)
{
	int e = pthread_create(&j->thread, NULL, fn, w);
	if (e == 0)
		j->started = 1;
	return -e;
}

/* Wait for a background job; its result (and error) move to err. */
static int bg_join(struct bg_job *j, struct gw_err *err)
{
	if (!j->started)
		return 0;
	pthread_join(j->thread, NULL);
	j->started = 0;
	if (j->ret < 0 && err)
		*err = j->err;
	return j->ret;
}

int snap_section_adopt(struct snap_writer *w, struct gw_err *err)
{
	struct stat st;
	if (!w->placed || w->adopted)
		return gw_err_set(err, EINVAL, "snapshot: no placed section");
	if (fstat(w->fd, &st) < 0)
		return gw_err_sys(err, errno, "stat %s", w->tmp);
	if ((uint64_t)st.st_size < w->pl_off)
		return gw_err_set(err, EIO, "%s ends at byte %llu, before its %s section", w->tmp,
				  (unsigned long long)st.st_size, snap_section_name(w->pl_type));
	w->pl_len = (uint64_t)st.st_size - w->pl_off;
	w->pos = (uint64_t)st.st_size;
	w->adopted = 1;
	w->seen |= 1u << w->pl_type;
	/* both read or flush what QEMU left in the page cache; the sections after it follow */
	int r = bg_start(&w->hash, hash_job, w);
	if (r == 0)
		r = bg_start(&w->flush, flush_job, w);
	return r < 0 ? gw_err_sys(err, -r, "start a thread") : 0;
}

int snap_writer_fd(const struct snap_writer *w)
{
	return w->fd;
}

int snap_commit(struct snap_writer *w, struct gw_err *err)
{
	int r;
	static const uint8_t empty_sha256[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
		0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
		0x78, 0x52, 0xb8, 0x55,
	};
	if (w->in_section) {
		r = gw_err_set(err, EINVAL, "snapshot: section %s still open",
			       snap_section_name(w->type));
		goto fail;
	}
	if (w->placed && !w->adopted) {
		r = gw_err_set(err, EINVAL, "snapshot: section %s still open",
			       snap_section_name(w->pl_type));
		goto fail;
	}
	if (!(w->seen & (1u << SNAP_SEC_CONFIG)) || !(w->seen & (1u << SNAP_SEC_STATE))) {
		r = gw_err_set(err, EINVAL, "snapshot: CONFIG and STATE sections are required");
		goto fail;
	}
	if (w->placed) {
		if ((r = bg_join(&w->hash, err)) < 0) {
			gw_err_prefix(err, "snapshot: %s section", snap_section_name(w->pl_type));
			goto fail;
		}
		if ((r = bg_join(&w->flush, err)) < 0)
			goto fail;
		w->sec_hdr = w->pl_hdr;
		if ((r = write_sec_hdr(w, w->pl_type, SNAP_FLAG_SPARSE, w->pl_len, w->pl_dig,
				       err)) < 0)
			goto fail;
	}
	w->sec_hdr = w->pos;
	if ((r = write_sec_hdr(w, SNAP_SEC_END, 0, 0, empty_sha256, err)) < 0)
		goto fail;
	w->pos += SNAP_SEC_HDR_SIZE;
	if (ftruncate(w->fd, (off_t)w->pos) < 0 || fsync(w->fd) < 0) {
		r = gw_err_sys(err, errno, "sync %s", w->tmp);
		goto fail;
	}
	if (rename(w->tmp, w->path) < 0) {
		r = gw_err_sys(err, errno, "rename %s to %s", w->tmp, w->path);
		goto fail;
	}
	free(w->tmp);
	w->tmp = NULL;
	snap_discard(w);
	return 0;
fail:
	snap_discard(w);
	return r;
}

void snap_discard(struct snap_writer *w)
{
	if (!w)
		return;
	bg_join(&w->hash, NULL);
	bg_join(&w->flush, NULL);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	EVP_MD_CTX_free(w->md);
	free(w->tmp);
	free(w->path);
	free(w);
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
			hash_blocks(md, buf, n, rel);
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
	int ret = sparse_digest(r->fd, s->offset, s->length, dig, err);
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
		int known = s->type < ARRAY_SIZE(sec_names);
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
