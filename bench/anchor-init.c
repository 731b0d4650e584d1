/* anchor-init: /init of the bare-QEMU anchor guest that bench/boot.sh, bench/migrate.sh and
 * bench/network.sh compare godwit against. The kernel hands it the `BENCH=` words of its
 * command line as environment: BENCH=boot prints "ready" on the console and powers off;
 * BENCH=mig prints "ready", then runs `gwtest heartbeat` (and `gwtest memtest MEM MS` when
 * MEM > 0) with their output on the console, like the godwit container does through the
 * agent; BENCH=net also loads the virtio-net modules in /lib/modules (the guest kit's), gives
 * eth0 the address NETIP (a.b.c.d, /24) and runs `gwtest serve`: an echo on TCP port 5000
 * and a sink on 5101, as the godwit container of bench/network.sh does. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

/* the guest kit's order (guest/kit/build.sh); a module that is not there is skipped */
static void load_modules(void)
{
	static const char *const mods[] = { "virtio_ring", "virtio", "virtio_pci_legacy_dev",
		"virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net" };
	char path[96];
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(path, sizeof(path), "/lib/modules/%s.ko", mods[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			syscall(SYS_finit_module, fd, "", 0);
			close(fd);
		}
	}
}

/* eth0 up with ip/24 (waits up to 5 s for the device to appear) */
static void net_up(const char *ip)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	strcpy(ifr.ifr_name, "eth0");
	for (int i = 0; i < 500 && ioctl(s, SIOCGIFINDEX, &ifr) < 0; i++)
		usleep(10000);
	a->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a->sin_addr);
	ioctl(s, SIOCSIFADDR, &ifr);
	inet_pton(AF_INET, "255.255.255.0", &a->sin_addr);
	ioctl(s, SIOCSIFNETMASK, &ifr);
	ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
}

int main(void)
{
	console();
	const char *mode = getenv("BENCH");
	if (write(1, "ready\n", 6) != 6)
		return 1;
	if (!mode || (strcmp(mode, "mig") != 0 && strcmp(mode, "net") != 0)) {
		sync();
		reboot(RB_POWER_OFF);
		return 0;
	}
	mount("proc", "/proc", "proc", 0, NULL);
	if (!strcmp(mode, "net")) {
		load_modules();
		net_up(getenv("NETIP") ? getenv("NETIP") : "10.89.0.12");
		spawn((char *const[]){ "/gwtest", "serve", "5000", "1", NULL });
		spawn((char *const[]){ "/gwtest", "serve", "5101", "0", NULL });
	}
	const char *mem = getenv("MEM"), *ms = getenv("MS");
	spawn((char *const[]){ "/gwtest", "heartbeat", NULL });
	if (mem && atol(mem) > 0)
		spawn((char *const[]){ "/gwtest", "memtest", (char *)mem, (char *)(ms ? ms : "1"),
				       NULL });
	for (;;)
		if (wait(NULL) < 0)
			pause();
}
