/* godwit-agent boot steps (docs/agent-protocol.md section 5): the mounts PID 1 needs, the virtio
 * modules (finit_module, in dependency order: the package has no modules.dep), the agent's
 * virtio-serial port, the container disk at /newroot, the loopback interface, and power off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "agent.h"
#include "godwit/util.h"

static const char *const modules[] = {
	"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"virtio_blk", "virtio_console", "failover", "net_failover", "virtio_net", "virtio_balloon",
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void mount_one(const char *src, const char *dst, const char *type, unsigned long flags,
		      const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		agent_log("mount %s on %s: %s", type, dst, strerror(errno));
}

void boot_mount_basics(void)
{
	int fd;

	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* terminals for a container that runs from the initramfs (no disk): proc.c's open_tty */
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620");
	/* The kernel may have found no /dev/console before devtmpfs: give ourselves stdio. */
	fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

bool boot_debug_requested(void)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strcmp(tok, "godwit.debug=1") == 0)
			return true;
	return false;
}

void boot_load_modules(const struct agent *a)
{
	int err[ARRAY_SIZE(modules)];
	char path[128];
	bool progress = true;

	/* The package has no modules.dep: retry what failed for a missing symbol (ENOENT) until
	 * no pass makes progress, so the order of the list is a hint, not a requirement. */
	for (size_t i = 0; i < ARRAY_SIZE(modules); i++)
		err[i] = ENOENT;
	while (progress) {
		progress = false;
		for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
			if (err[i] != ENOENT)
				continue;
			snprintf(path, sizeof(path), "/lib/modules/%s.ko", modules[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);

			if (fd < 0) {
				err[i] = EBADF;
				agent_dbg(a, "module %s: not present, skipped", modules[i]);
				continue;
			}
			err[i] = syscall(SYS_finit_module, fd, "", 0) < 0 ? errno : 0;
			close(fd);
			if (err[i] == EEXIST)
				err[i] = 0;
			if (err[i] == 0) {
				progress = true;
				agent_dbg(a, "module %s loaded", modules[i]);
			}
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(modules); i++)
		if (err[i] && err[i] != EBADF)
			agent_log("load module %s: %s", modules[i], strerror(err[i]));
}

/* Find vportNpM whose name is ours; 0 and *out filled, or -ENOENT. */
static int find_port(char *out, size_t outlen)
{
	char path[300], name[128];
	struct dirent *de;
	DIR *d = opendir("/sys/class/virtio-ports");
	int ret = -ENOENT;

	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, name, sizeof(name) - 1);
		close(fd);
		if (n <= 0)
			continue;
		name[n] = 0;
		name[strcspn(name, "\n")] = 0;
		if (strcmp(name, GW_AGENT_PORT_NAME) == 0) {
			snprintf(out, outlen, "/dev/%s", de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

int boot_open_port(const struct agent *a, struct gw_err *err)
{
	char dev[300];
	int fd;

	/* The port appears once the host side has announced it; the node once devtmpfs has it. */
	for (int i = 0; i < 1000; i++) {
		if (find_port(dev, sizeof(dev)) == 0) {
			fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd >= 0) {
				agent_dbg(a, "agent port %s after %d ms", dev, i * 10);
				return fd;
			}
		}
		sleep_ms(10);
	}
	return gw_err_set(err, ENOENT, "virtio-serial port %s not found after 10 s",
			  GW_AGENT_PORT_NAME);
}

const char *boot_mount_root(const struct agent *a)
{
	struct stat st;
	int i;

	/* virtio_blk probes when it loads; allow a little time for the node to appear. */
	for (i = 0; i < 50 && stat("/dev/vda", &st) < 0; i++)
		sleep_ms(10);
	if (i == 50) {
		agent_dbg(a, "no /dev/vda: running from the initramfs");
		return "/";
	}
	mkdir(AGENT_ROOT, 0755);
	if (mount("/dev/vda", AGENT_ROOT, "ext4", 0, NULL) < 0) {
		agent_log("mount /dev/vda on %s: %s; running from the initramfs", AGENT_ROOT,
			  strerror(errno));
		return "/";
	}
	mount_one("proc", AGENT_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", AGENT_ROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", AGENT_ROOT "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", AGENT_ROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620");
	mount_one("tmpfs", AGENT_ROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", AGENT_ROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	agent_dbg(a, "container disk mounted on %s", AGENT_ROOT);
	return AGENT_ROOT;
}

void boot_loopback_up(const struct agent *a)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		agent_log("loopback: socket: %s", strerror(errno));
		return;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		agent_log("loopback: SIOCGIFFLAGS: %s", strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			agent_log("loopback: SIOCSIFFLAGS: %s", strerror(errno));
		else
			agent_dbg(a, "lo up");
	}
	close(fd);
}

void boot_power_off(const struct agent *a)
{
	static const char *const mnts[] = {
		AGENT_ROOT "/tmp", AGENT_ROOT "/dev/shm", AGENT_ROOT "/dev/pts", AGENT_ROOT "/dev",
		AGENT_ROOT "/sys", AGENT_ROOT "/proc", AGENT_ROOT,
	};

	kill(-1, SIGKILL);
	sync();
	mounts_teardown();
	if (strcmp(a->root, AGENT_ROOT) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(mnts); i++)
			if (umount2(mnts[i], 0) < 0 && umount2(mnts[i], MNT_DETACH) < 0)
				agent_log("umount %s: %s", mnts[i], strerror(errno));
	sync();
	agent_dbg(a, "power off");
	reboot(RB_POWER_OFF);
	agent_log("reboot(RB_POWER_OFF): %s", strerror(errno));
	for (;;)
		pause();
}
