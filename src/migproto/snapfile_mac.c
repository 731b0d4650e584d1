/* A snapshot's HMAC (include/godwit/snapfile.h): HMAC-SHA256 with the host's snapshot key over
 * the file's header and every section header before the MAC section, in file order. Each
 * section header holds its data's digest, so the MAC binds every byte; a digest alone anyone
 * can recompute after changing the data, the MAC only whoever holds the key. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "godwit/snapfile.h"
#include "godwit/util.h"
#include "snapfile_int.h"

/* The MAC of fd's header and section headers from the first up to end (the MAC section's
 * header, or END's). */
int snap_mac_of(int fd, uint64_t end, const uint8_t *key, size_t key_len, uint8_t mac[32],
		struct gw_err *err)
{
	uint8_t buf[SNAP_HDR_SIZE + SNAP_MAX_SECTIONS * SNAP_SEC_HDR_SIZE];
	size_t n = SNAP_HDR_SIZE;
	int e = gw_pread_full(fd, buf, SNAP_HDR_SIZE, 0);
	for (uint64_t off = SNAP_HDR_SIZE; e == 0 && off < end;) {
		if (n + SNAP_SEC_HDR_SIZE > sizeof(buf) || end - off < SNAP_SEC_HDR_SIZE)
			return gw_err_set(err, EINVAL, "snapshot: section headers do not end at the "
					  "MAC section");
		if ((e = gw_pread_full(fd, buf + n, SNAP_SEC_HDR_SIZE, off)) < 0)
			break;
		uint64_t len = get_be(buf + n + 8, 8);
		n += SNAP_SEC_HDR_SIZE;
		if (len > end - off - SNAP_SEC_HDR_SIZE)
			return gw_err_set(err, EINVAL, "snapshot: a section runs past the MAC section");
		off += SNAP_SEC_HDR_SIZE + len;
	}
	if (e < 0)
		return gw_err_sys(err, -e, "read the snapshot's headers");
	size_t got = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, buf, n, mac, 32, &got) ||
	    got != 32)
		return gw_err_set(err, EIO, "HMAC-SHA256 failed");
	return 0;
}

int snap_key_load(const char *path, uint8_t key[SNAP_KEY_MAX], size_t *len, struct gw_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		return gw_err_sys(err, errno, "snapshot key %s", path);
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = gw_err_sys(err, errno, "snapshot key %s", path);
	else if (!S_ISREG(st.st_mode))
		r = gw_err_set(err, EINVAL, "snapshot key %s: not a regular file", path);
	else if (st.st_uid != geteuid() || (st.st_mode & 077))
		r = gw_err_set(err, EPERM, "snapshot key %s: must be this user's and readable by "
			       "no one else (chmod 600)", path);
	ssize_t n = r == 0 ? read(fd, key, SNAP_KEY_MAX) : 0;
	close(fd);
	if (r == 0 && n < 0)
		r = gw_err_sys(err, errno, "read snapshot key %s", path);
	else if (r == 0 && n < SNAP_KEY_MIN)
		r = gw_err_set(err, EINVAL, "snapshot key %s: %zd bytes, at least %d wanted", path, n,
			       SNAP_KEY_MIN);
	*len = r == 0 ? (size_t)n : 0;
	return r;
}

int snap_check_mac(struct snap_reader *r, const uint8_t *key, size_t key_len,
		   struct gw_err *err)
{
	const struct snap_section *s = snap_find(r, SNAP_SEC_MAC);
	if (!key)
		return 0;
	if (!s || s->length != 32)
		return gw_err_set(err, EPERM, "the snapshot carries no HMAC, and this host's "
				  "snapshot key (GODWIT_SNAPSHOT_KEY) requires one");
	/* nothing but END after it: a section it does not cover would be taken unchecked */
	const struct snap_info *in = snap_info(r);
	if (in->n_sections < 2 || &in->sections[in->n_sections - 2] != s)
		return gw_err_set(err, EPERM, "the snapshot's HMAC is not its last section");
	uint8_t want[32], have[32];
	int e = gw_pread_full(snap_reader_fd(r), have, 32, s->offset);
	if (e < 0)
		return gw_err_sys(err, -e, "read the snapshot's HMAC");
	if ((e = snap_mac_of(snap_reader_fd(r), s->offset - SNAP_SEC_HDR_SIZE, key, key_len, want,
			     err)) < 0)
		return e;
	if (CRYPTO_memcmp(want, have, 32))
		return gw_err_set(err, EPERM, "the snapshot's HMAC does not match this host's "
				  "snapshot key: made with another key, or changed since");
	return 0;
}
