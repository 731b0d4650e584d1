/* The snapshot file writer (include/godwit/snapfile.h): each section's length and digest are
 * patched in once its data is complete; a placed section, written by QEMU, is hashed in the
 * background while the file goes to disk. */
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
	uint8_t key[SNAP_KEY_MAX];	/* snap_set_key: a MAC section at commit */
	size_t key_len;
};

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
	/* a new file of our own: never one that is there already, nor through a symlink (the
	 * directory is the user's: a planted PATH.tmp would receive the guest's RAM and disk) */
	w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = errno;
		free(w->tmp);
		w->tmp = NULL;	/* not ours to unlink */
		snap_discard(w);
		if (e == EEXIST)
			return gw_err_set(err, EEXIST, "%s.tmp exists: another snapshot is being "
					  "written there, or one that failed left it (remove it)", path);
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
	if (type == SNAP_SEC_END || type == SNAP_SEC_MAC || type >= SNAP_SEC_KNOWN)
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
	w->hash.ret = snap_sparse_digest(w->fd, w->pl_off, w->pl_len, w->pl_dig, &w->hash.err);
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

int snap_set_key(struct snap_writer *w, const uint8_t *key, size_t len, struct gw_err *err)
{
	if (len < SNAP_KEY_MIN || len > SNAP_KEY_MAX)
		return gw_err_set(err, EINVAL, "snapshot key: %zu bytes (%d to %d)", len, SNAP_KEY_MIN,
				  SNAP_KEY_MAX);
	memcpy(w->key, key, len);
	w->key_len = len;
	return 0;
}

/* The MAC section, over the header and every section header written so far */
static int add_mac(struct snap_writer *w, struct gw_err *err)
{
	uint8_t mac[32], dig[32];
	int r = snap_mac_of(w->fd, w->pos, w->key, w->key_len, mac, err);
	if (r < 0)
		return r;
	EVP_Digest(mac, sizeof(mac), dig, NULL, EVP_sha256(), NULL);
	w->sec_hdr = w->pos;
	if ((r = write_sec_hdr(w, SNAP_SEC_MAC, SNAP_FLAG_SKIPPABLE, sizeof(mac), dig, err)) < 0)
		return r;
	if ((r = gw_pwrite_full(w->fd, mac, sizeof(mac), w->pos + SNAP_SEC_HDR_SIZE)) < 0)
		return gw_err_sys(err, -r, "write %s", w->tmp);
	w->pos += SNAP_SEC_HDR_SIZE + sizeof(mac);
	return 0;
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
	if (w->key_len && (r = add_mac(w, err)) < 0)
		goto fail;
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
	OPENSSL_cleanse(w->key, sizeof(w->key));
	free(w->tmp);
	free(w->path);
	free(w);
}
