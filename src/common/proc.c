/* Running helper programs with argv (include/godwit/proc.h): stdin from /dev/null or a
 * memfd holding the input, stderr captured so that a failure explains itself. */
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "godwit/proc.h"
#include "godwit/util.h"

extern char **environ;

/* a copy of input to be the child's stdin (a file, not a pipe: no writer to keep
 * up with the child, whatever the input's size), at offset 0 */
static int input_fd(const void *input, size_t len, struct gw_err *err)
{
	cleanup_close int fd = memfd_create("gw-input", MFD_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "memfd_create");
	int r = gw_write_full(fd, input, len);
	if (r < 0)
		return gw_err_sys(err, -r, "write input");
	if (lseek(fd, 0, SEEK_SET) < 0)
		return gw_err_sys(err, errno, "lseek input");
	return steal_fd(fd);
}

int gw_run(char *const argv[], struct gw_err *err)
{
	return gw_run_input(argv, NULL, 0, err);
}

int gw_run_input(char *const argv[], const void *input, size_t len, struct gw_err *err)
{
	cleanup_close int in = input ? input_fd(input, len, err) : -1;
	if (input && in < 0)
		return in;
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return gw_err_sys(err, errno, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r != 0) {
		close(pipefd[0]);
		return gw_err_sys(err, r, "run %s", argv[0]);
	}
	char buf[1024];
	size_t have = 0;
	ssize_t n;
	while ((n = read(pipefd[0], buf + have, sizeof(buf) - 1 - have)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		have += (size_t)n;
		if (have == sizeof(buf) - 1) {
			char sink[4096]; /* keep draining so the child never blocks */
			while (read(pipefd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	close(pipefd[0]);
	buf[have] = '\0';
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return gw_err_sys(err, errno, "wait %s", argv[0]);
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	if (WIFSIGNALED(ws))
		return gw_err_set(err, EIO, "%s killed by signal %d", argv[0], WTERMSIG(ws));
	return gw_err_set(err, EIO, "%s failed (status %d)%s%s", argv[0], WEXITSTATUS(ws),
			  buf[0] ? ": " : "", buf);
}
