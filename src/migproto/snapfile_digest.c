/* The sparse digest of a snapshot section (include/godwit/snapfile.h): per-chunk digests of the
 * blocks that are not all zero, computed from the file's data extents on several threads. */
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

#define MAX_HASH_THREADS 4

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static uint64_t n_chunks(uint64_t len)
{
	return (len + SNAP_SPARSE_CHUNK - 1) / SNAP_SPARSE_CHUNK;
}

/* Hash the blocks of buf (data bytes from rel, a block boundary) that are not all zero. */
void snap_hash_blocks(EVP_MD_CTX *md, const uint8_t *buf, size_t n, uint64_t rel)
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
			snap_hash_blocks(md, buf, n, b);
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
int snap_sparse_digest(int fd, uint64_t off, uint64_t len, uint8_t dig[32],
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

