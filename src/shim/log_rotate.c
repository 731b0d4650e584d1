/* The output log's rotation (run --log-opt max-size, max-file; docs/cli.md): once output.log
 * reaches its size it becomes output.log.1, the older ones shift up, the oldest beyond max-file
 * is removed, and the shim appends to a new output.log. Not while a move or a snapshot runs:
 * they read the file by offset; the next append after them rotates. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/util.h"
#include "shim.h"

/* output.log for k = 0, else output.log.K */
static char *log_name(const struct container *ct, int k)
{
	return k ? gw_strdup_printf("%s.%d", ct->log_path, k) : gw_strdup_printf("%s", ct->log_path);
}

void shim_log_rotate_check(struct container *ct)
{
	uint64_t max = ct->cfg.log_max_size ? ct->cfg.log_max_size : CT_LOG_MAX_SIZE_DEFAULT;
	int files = ct->cfg.log_max_file ? ct->cfg.log_max_file : CT_LOG_MAX_FILE_DEFAULT;
	struct stat st;
	if (ct->job || ct->log_fd < 0 || fstat(ct->log_fd, &st) < 0 || (uint64_t)st.st_size < max)
		return;
	for (int k = files - 1; k >= 0; k--) {
		cleanup_free char *from = log_name(ct, k);
		cleanup_free char *to = k + 1 < files ? log_name(ct, k + 1) : NULL;
		if (!from)
			return;
		if (to ? rename(from, to) < 0 && errno != ENOENT : unlink(from) < 0 && errno != ENOENT)
			fprintf(stderr, "shim %s: rotate %s: %s\n", ct->cfg.name, from, strerror(errno));
	}
	int fd = open(ct->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "shim %s: open %s: %s\n", ct->cfg.name, ct->log_path, strerror(errno));
		return; /* the old fd writes on into output.log.1 */
	}
	close(ct->log_fd);
	ct->log_fd = fd;
}
