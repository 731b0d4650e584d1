/* libFuzzer target for the snapshot reader: any file must be verified or refused with an
 * error, and whatever passes must have its HMAC checked and stream without a crash; the same with STATE's check deferred
 * (restore's path: the structure first, STATE's sparse digest in threads afterwards). */
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "godwit/snapfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("snap", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	struct gw_err err;
	struct snap_reader *r = NULL;
	if (write(fd, data, size) == (ssize_t)size && snap_open_fd(fd, "fuzz", &r, &err) == 0) {
		/* the HMAC's walk over the section headers (snapfile_mac.c) */
		static const uint8_t key[SNAP_KEY_MIN] = { 1, 2, 3 };
		snap_check_mac(r, key, sizeof(key), &err);
		char *cfg = NULL;
		if (snap_read_config(r, &cfg, NULL, &err) == 0)
			free(cfg);
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0) {
			snap_stream_fd(r, SNAP_SEC_STATE, null, &err);
			snap_stream_fd(r, SNAP_SEC_DISK, null, &err);
			close(null);
		}
		snap_close(r);
	}
	r = NULL;
	if (snap_open_fd_ex(fd, "fuzz", 1u << SNAP_SEC_STATE, &r, &err) == 0) {
		snap_verify_section(r, SNAP_SEC_STATE, &err);
		snap_close(r);
	}
	close(fd);
	return 0;
}
