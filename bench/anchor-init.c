/* anchor-init: /init of the bare-QEMU anchor guest that bench/boot.sh and bench/migrate.sh
 * compare godwit against. The kernel hands it the `BENCH=` words of its command line as
 * environment: BENCH=boot prints "ready" on the console and powers off; BENCH=mig prints
 * "ready", then runs `gwtest heartbeat` (and `gwtest memtest MEM MS` when MEM > 0) with their
 * output on the console, like the godwit container does through the agent. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

static void console(void)
{
	/* /dev/console normally comes from the kernel's built-in initramfs; fall back to ttyS0 */
	if (fcntl(1, F_GETFD) >= 0)
		return;
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	int fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static void spawn(char *const argv[])
{
	pid_t p = fork();
	if (p == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
}

int main(void)
{
	console();
	const char *mode = getenv("BENCH");
	if (write(1, "ready\n", 6) != 6)
		return 1;
	if (!mode || strcmp(mode, "mig") != 0) {
		sync();
		reboot(RB_POWER_OFF);
		return 0;
	}
	mount("proc", "/proc", "proc", 0, NULL);
	const char *mem = getenv("MEM"), *ms = getenv("MS");
	spawn((char *const[]){ "/gwtest", "heartbeat", NULL });
	if (mem && atol(mem) > 0)
		spawn((char *const[]){ "/gwtest", "memtest", (char *)mem, (char *)(ms ? ms : "1"),
				       NULL });
	for (;;)
		if (wait(NULL) < 0)
			pause();
}
