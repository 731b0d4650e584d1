/* The snapshot file format's private pieces, shared by snapfile_write.c, snapfile_read.c and
 * snapfile_digest.c (the format itself: include/godwit/snapfile.h). */
#ifndef GODWIT_SNAPFILE_INT_H
#define GODWIT_SNAPFILE_INT_H

#include <stdint.h>
#include <openssl/evp.h>

#include "godwit/snapfile.h"

#define COPY_BUF (1u << 20)	/* a multiple of SNAP_SPARSE_BLOCK */
#define SNAP_SEC_KNOWN (SNAP_SEC_MAC + 1) /* section types this version knows */

static inline void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Hash the blocks of buf (data bytes from rel, a block boundary) that are not all zero: the
 * sparse digest's inner loop, for a reader that hashes as it copies. */
void snap_hash_blocks(EVP_MD_CTX *md, const uint8_t *buf, size_t n, uint64_t rel);

/* The sparse digest (snapfile.h) of len bytes at off in fd, reading only the file's data
 * extents, on up to four threads. */
int snap_sparse_digest(int fd, uint64_t off, uint64_t len, uint8_t dig[32], struct gw_err *err);

/* The MAC of fd's header and its section headers before byte end (snapfile_mac.c). */
int snap_mac_of(int fd, uint64_t end, const uint8_t *key, size_t key_len, uint8_t mac[32],
		struct gw_err *err);

#endif
