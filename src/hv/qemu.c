/* The QEMU driver (include/godwit/hv.h): the command line of a container VM, the choice of
 * accelerator, and the QEMU binary's version. Source and destination of a migration build
 * their command lines here from the same config, so every device id, PCI address and block
 * node name is written out explicitly and never left to QEMU's defaults.
 * docs/qemu.md explains each option. */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "godwit/hv.h"
#include "godwit/knobs.h"
#include "godwit/util.h"

extern char **environ;

#define HV_TCG_TB_MIB 256		/* TCG translation cache; 7.2 defaults to 1 GiB */
#define HV_TCG_CPU "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16" /* x86-64-v2 */
/* Measured under TCG (bench/boot.sh and a 4-run comparison): the probes these switch off
 * (extra 8250 UARTs, the PS/2 controller, timer and crypto self-tests, PCI bus scans past bus
 * 0, the soft-lockup watchdog) cost ~0.4 s of a ~2.6 s boot; none is a device we give.
 * oops=panic: a guest kernel that oopses (under TCG, after a move that lost a write:
 * docs/migration.md) goes down and QEMU with it (panic=-1, -no-reboot), so the container is seen
 * to stop; without it the kernel killed the task and could spin on with PID 1 gone, a VM at
 * 100 % of a core that answers nothing.
 * init_on_alloc=0: Debian's kernel zeroes every page it hands out; the free-page hints of a move
 * (docs/migration-policy.md) take all free memory for a moment, and zeroing it cost the TCG
 * guest ~1.6 s of vCPU and a 2 s stall per move. What it guards against, a kernel leaking stale
 * memory into a process, stays inside a VM that runs one container (docs/security.md). */
#define HV_CMDLINE_BASE                                                                    \
	"console=ttyS0 quiet panic=-1 oops=panic 8250.nr_uarts=1 i8042.noaux i8042.nomux "       \
	"i8042.nopnp i8042.dumbkbd no_timer_check cryptomgr.notests pci=lastbus=0 nowatchdog "    \
	"init_on_alloc=0"
#define HV_CMDLINE_MAX 2048		/* x86 COMMAND_LINE_SIZE */
#define HV_KVM_DEV "/dev/kvm"
#define HV_PVM_MODULE "/sys/module/kvm_pvm"

/* Fixed PCI slots on the i440FX bus (slot 1 is the PIIX3 chipset, slot 2 stays free). */
#define HV_SLOT_NET "0x3"
#define HV_SLOT_DISK "0x4"
#define HV_SLOT_SERIAL "0x5"
#define HV_SLOT_VOL0 6 /* volume N at slot 6 + N */
#define HV_SLOT_BALLOON "0x1f"

struct argv_buf {
	char **v;
	size_t n, cap;
	int oom;
};

static void argv_add(struct argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void argv_add(struct argv_buf *a, const char *fmt, ...)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv) {
			a->oom = 1;
			return;
		}
		a->v = nv;
		a->cap = ncap;
	}
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s) {
		a->oom = 1;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* QEMU's option syntax (key=value,key=value) escapes a comma in a value by doubling it. */
static char *opt_escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	for (size_t i = 0; i < n; i++)
		commas += s[i] == ',';
	char *out = malloc(n + commas + 1), *p = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*p++ = s[i];
		if (s[i] == ',')
			*p++ = ',';
	}
	*p = '\0';
	return out;
}

static int valid_mac(const char *m)
{
	if (strlen(m) != 17)
		return 0;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]))
			return 0;
	}
	/* A multicast MAC (low bit of the first octet) cannot be a NIC address. */
	int first = (int)strtol((char[3]){ m[0], m[1], 0 }, NULL, 16);
	return !(first & 1);
}

static int check_config(const struct hv_vm_config *c, struct gw_err *err)
{
	if (!c->name || !gw_valid_name(c->name))
		return gw_err_set(err, EINVAL, "vm config: invalid name \"%s\"",
				  c->name ? c->name : "");
	if (!c->kernel || !*c->kernel)
		return gw_err_set(err, EINVAL, "vm %s: no kernel", c->name);
	if (!c->qmp_path || !c->console_path)
		return gw_err_set(err, EINVAL, "vm %s: QMP socket and console log are required",
				  c->name);
	if (c->mem_bytes < (32ULL << 20) || c->mem_bytes % (1ULL << 20) ||
	    c->mem_bytes > (1ULL << 40))
		return gw_err_set(err, EINVAL,
				  "vm %s: memory must be a whole number of MiB, 32 MiB to 1 TiB",
				  c->name);
	if (c->cpus < 1 || c->cpus > 64)
		return gw_err_set(err, EINVAL, "vm %s: cpus must be 1..64, not %d", c->name,
				  c->cpus);
	if (c->machine && !hv_valid_machine(c->machine))
		return gw_err_set(err, EINVAL, "vm %s: invalid machine type \"%.40s\" (want "
				  "pc-i440fx-MAJOR.MINOR)", c->name, c->machine);
	if (c->accel != HV_ACCEL_TCG && c->accel != HV_ACCEL_KVM)
		return gw_err_set(err, EINVAL, "vm %s: unknown accelerator %d", c->name, c->accel);
	if (c->nic_mac && !valid_mac(c->nic_mac))
		return gw_err_set(err, EINVAL, "vm %s: invalid unicast MAC address \"%s\"",
				  c->name, c->nic_mac);
	if (c->n_vols < 0 || c->n_vols > GW_MOUNTS_MAX)
		return gw_err_set(err, EINVAL, "vm %s: %d volumes (at most %d)", c->name, c->n_vols,
				  GW_MOUNTS_MAX);
	for (int i = 0; i < c->n_vols; i++)
		if (!c->vol_paths[i] || c->vol_paths[i][0] != '/')
			return gw_err_set(err, EINVAL, "vm %s: volume %d: no absolute path", c->name, i);
	if ((c->nic_tap || c->nic_fd > 0) && !c->nic_mac)
		return gw_err_set(err, EINVAL, "vm %s: tap device without a MAC address", c->name);
	if (c->nic_tap && c->nic_fd > 0)
		return gw_err_set(err, EINVAL, "vm %s: a tap by name and by fd", c->name);
	if (c->nic_tap && !gw_valid_ifname(c->nic_tap))
		return gw_err_set(err, EINVAL, "vm %s: invalid tap device name \"%s\"", c->name,
				  c->nic_tap);
	size_t cl = strlen(HV_CMDLINE_BASE) + (c->cmdline_extra ? strlen(c->cmdline_extra) + 1 : 0);
	if (cl >= HV_CMDLINE_MAX)
		return gw_err_set(err, E2BIG, "vm %s: kernel command line longer than %d bytes",
				  c->name, HV_CMDLINE_MAX - 1);
	return 0;
}

int hv_build_argv(const struct hv_vm_config *cfg, char ***argv, struct gw_err *err)
{
	*argv = NULL;
	int rc = check_config(cfg, err);
	if (rc < 0)
		return rc;
	cleanup_free char *qmp = opt_escape(cfg->qmp_path);
	cleanup_free char *con = opt_escape(cfg->console_path);
	cleanup_free char *disk = cfg->disk_path ? opt_escape(cfg->disk_path) : NULL;
	cleanup_free char *agent = cfg->agent_path ? opt_escape(cfg->agent_path) : NULL;
	if (!qmp || !con || (cfg->disk_path && !disk) || (cfg->agent_path && !agent))
		return gw_err_set(err, ENOMEM, "vm %s: out of memory", cfg->name);

	struct argv_buf a = { 0 };
	argv_add(&a, "%s", hv_qemu_binary());
	argv_add(&a, "-name");
	argv_add(&a, "guest=%s,debug-threads=on", cfg->name);
	/* versioned, from the container's config: the alias "pc" moves with QEMU upgrades */
	argv_add(&a, "-machine");
	argv_add(&a, "%s", cfg->machine ? cfg->machine : HV_MACHINE_LEGACY);
	argv_add(&a, "-accel");
	if (cfg->accel == HV_ACCEL_KVM) {
		argv_add(&a, "kvm");
		argv_add(&a, "-cpu");
		argv_add(&a, "host");
	} else {
		argv_add(&a, "tcg,tb-size=%d", HV_TCG_TB_MIB);
		argv_add(&a, "-cpu");
		argv_add(&a, "%s", HV_TCG_CPU);
	}
	argv_add(&a, "-m");
	argv_add(&a, "%lluM", (unsigned long long)(cfg->mem_bytes >> 20));
	argv_add(&a, "-smp");
	argv_add(&a, "%d", cfg->cpus);
	argv_add(&a, "-nodefaults");
	argv_add(&a, "-no-user-config");
	argv_add(&a, "-nographic");
	argv_add(&a, "-no-reboot");
	argv_add(&a, "-msg");
	argv_add(&a, "timestamp=on");

	argv_add(&a, "-kernel");
	argv_add(&a, "%s", cfg->kernel);
	if (cfg->initrd) {
		argv_add(&a, "-initrd");
		argv_add(&a, "%s", cfg->initrd);
	}
	argv_add(&a, "-append");
	if (cfg->cmdline_extra && *cfg->cmdline_extra)
		argv_add(&a, "%s %s", HV_CMDLINE_BASE, cfg->cmdline_extra);
	else
		argv_add(&a, "%s", HV_CMDLINE_BASE);

	argv_add(&a, "-chardev");
	if (cfg->console_fd > 0)
		argv_add(&a, "socket,id=console0,fd=%d,server=off", cfg->console_fd);
	else
		argv_add(&a, "file,id=console0,path=%s", con);
	argv_add(&a, "-serial");
	argv_add(&a, "chardev:console0");
	argv_add(&a, "-chardev");
	if (cfg->qmp_fd > 0)
		argv_add(&a, "socket,id=qmp0,fd=%d,server=on,wait=off", cfg->qmp_fd);
	else
		argv_add(&a, "socket,id=qmp0,path=%s,server=on,wait=off", qmp);
	argv_add(&a, "-mon");
	argv_add(&a, "chardev=qmp0,mode=control");

	if (cfg->nic_mac) {
		argv_add(&a, "-netdev");
		if (cfg->nic_tap)
			argv_add(&a, "tap,id=net0,ifname=%s,script=no,downscript=no", cfg->nic_tap);
		else if (cfg->nic_fd > 0)
			argv_add(&a, "tap,id=net0,fd=%d", cfg->nic_fd);
		else
			argv_add(&a, "user,id=net0,restrict=on"); /* no way out of the VM */
		argv_add(&a, "-device");
		argv_add(&a, "virtio-net-pci,id=nic0,netdev=net0,mac=%s,bus=pci.0,addr=%s",
			 cfg->nic_mac, HV_SLOT_NET);
	}
	if (cfg->disk_path) {
		/* -drive, not -blockdev: the migration's disk mirror (blockdev-mirror) and its
		 * NBD export find the disk by its BlockBackend name "disk0" */
		argv_add(&a, "-drive");
		argv_add(&a, "if=none,id=disk0,format=qcow2,discard=unmap,file=%s", disk);
		argv_add(&a, "-device");
		argv_add(&a, "virtio-blk-pci,id=vda,drive=disk0,bus=pci.0,addr=%s", HV_SLOT_DISK);
	}
	for (int i = 0; i < cfg->n_vols; i++) {
		cleanup_free char *vol = opt_escape(cfg->vol_paths[i]);
		if (!vol) {
			a.oom = 1;
			break;
		}
		argv_add(&a, "-drive");
		argv_add(&a, "if=none,id=vol%d,format=qcow2,discard=unmap,file=%s%s", i, vol,
			 cfg->vol_ro[i] ? ",readonly=on" : "");
		argv_add(&a, "-device");
		argv_add(&a, "virtio-blk-pci,id=vdv%d,drive=vol%d,serial=gwvol%d,bus=pci.0,addr=0x%x",
			 i, i, i, HV_SLOT_VOL0 + i);
	}
	if (cfg->agent_path) {
		argv_add(&a, "-device");
		argv_add(&a, "virtio-serial-pci,id=vser0,max_ports=2,bus=pci.0,addr=%s",
			 HV_SLOT_SERIAL);
		argv_add(&a, "-chardev");
		if (cfg->agent_fd > 0)
			argv_add(&a, "socket,id=agent0,fd=%d,server=on,wait=off", cfg->agent_fd);
		else
			argv_add(&a, "socket,id=agent0,path=%s,server=on,wait=off", agent);
		argv_add(&a, "-device");
		argv_add(&a, "virtserialport,id=agentport0,bus=vser0.0,nr=1,chardev=agent0,"
			     "name=org.godwit.agent");
	}
	if (cfg->free_page_hints) {
		/* no balloon target is ever set: the device only reports free pages to a pre-copy
		 * move, which then neither reads nor sends them (QEMU's hints run in an iothread) */
		argv_add(&a, "-object");
		argv_add(&a, "iothread,id=iothread-hints");
		argv_add(&a, "-device");
		argv_add(&a, "virtio-balloon-pci,id=balloon0,free-page-hint=on,"
			     "iothread=iothread-hints,bus=pci.0,addr=%s", HV_SLOT_BALLOON);
	}
	if (cfg->sandbox) {
		/* seccomp: no obsolete calls, no setuid/setgid, no fork or exec, no scheduler or
		 * NUMA changes (QEMU's own list of calls for each) */
		argv_add(&a, "-sandbox");
		argv_add(&a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	}
	if (cfg->incoming) {
		argv_add(&a, "-incoming");
		argv_add(&a, "defer");
	}
	if (cfg->paused)
		argv_add(&a, "-S");

	if (a.oom) {
		hv_argv_free(a.v);
		return gw_err_set(err, ENOMEM, "vm %s: out of memory", cfg->name);
	}
	*argv = a.v;
	return 0;
}

void hv_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

const char *hv_accel_name(enum hv_accel a)
{
	return a == HV_ACCEL_KVM ? "kvm" : a == HV_ACCEL_TCG ? "tcg" : "unknown";
}

/* Can KVM run a stock guest kernel here? 1 yes, 0 no (why in reason). */
static int kvm_usable(const char *kvm_dev, const char *pvm_module, char *reason, size_t rlen)
{
	int fd = open(kvm_dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(reason, rlen, "%s: %s", kvm_dev, strerror(errno));
		return 0;
	}
	close(fd);
	struct stat st;
	if (stat(pvm_module, &st) == 0) {
		snprintf(reason, rlen, "%s is PVM-backed (kvm_pvm loaded)", kvm_dev);
		return 0;
	}
	snprintf(reason, rlen, "%s is usable", kvm_dev);
	return 1;
}

int hv_choose_accel_at(const char *mode, const char *kvm_dev, const char *pvm_module,
		       enum hv_accel *out, char *reason, size_t reason_len, struct gw_err *err)
{
	char why[256];
	char dummy[1];
	if (!reason || !reason_len) {
		reason = dummy;
		reason_len = sizeof(dummy);
	}
	if (!mode || strcmp(mode, "tcg") == 0) {
		*out = HV_ACCEL_TCG;
		snprintf(reason, reason_len, "tcg: requested");
		return 0;
	}
	if (strcmp(mode, "kvm") == 0) {
		if (!kvm_usable(kvm_dev, pvm_module, why, sizeof(why))) {
			if (strstr(why, "PVM"))
				return gw_err_set(err, ENODEV, "kvm: %s is PVM-backed (kvm_pvm) and "
						  "cannot run a stock guest kernel", kvm_dev);
			return gw_err_set(err, ENODEV, "kvm: %s", why);
		}
		*out = HV_ACCEL_KVM;
		snprintf(reason, reason_len, "kvm: requested, %s", why);
		return 0;
	}
	if (strcmp(mode, "auto") == 0) {
		int ok = kvm_usable(kvm_dev, pvm_module, why, sizeof(why));
		*out = ok ? HV_ACCEL_KVM : HV_ACCEL_TCG;
		snprintf(reason, reason_len, "%s: %s", ok ? "kvm" : "tcg", why);
		return 0;
	}
	return gw_err_set(err, EINVAL, "invalid accelerator \"%s\" (want auto, kvm or tcg)", mode);
}

int hv_choose_accel(const char *mode, enum hv_accel *out, char *reason, size_t reason_len,
		    struct gw_err *err)
{
	return hv_choose_accel_at(mode, HV_KVM_DEV, HV_PVM_MODULE, out, reason, reason_len, err);
}

const char *hv_qemu_binary(void)
{
	const char *b = gw_knobs()->qemu;
	return b ? b : "qemu-system-x86_64";
}

int hv_qemu_version(char *buf, size_t len)
{
	int p[2];
	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	char *const args[] = { (char *)hv_qemu_binary(), "--version", NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, args[0], &fa, NULL, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return -rc;
	}
	char out[512];
	size_t n = 0;
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		if (poll(&pfd, 1, 10000) == 0) {
			kill(pid, SIGKILL); /* a wedged binary: take what we have */
			break;
		}
		ssize_t r = read(p[0], out + n, sizeof(out) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(out) - 1)
			break;
	}
	out[n] = '\0';
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" */
	const char *key = "version ";
	char *v = strstr(out, key);
	if (!v)
		return -EPROTO;
	v += strlen(key);
	size_t vl = strcspn(v, " \n");
	if (vl == 0 || vl >= len)
		return vl ? -ENOSPC : -EPROTO;
	memcpy(buf, v, vl);
	buf[vl] = '\0';
	return 0;
}

int hv_version_parse(const char *v, int *major, int *minor)
{
	char *end;
	if (!v || !isdigit((unsigned char)v[0]))
		return -EINVAL;
	errno = 0;
	long ma = strtol(v, &end, 10);
	if (errno || *end != '.' || !isdigit((unsigned char)end[1]) || ma > 999)
		return -EINVAL;
	long mi = strtol(end + 1, &end, 10);
	if (errno || mi > 999 || (*end && *end != '.' && *end != ' ' && *end != '-' && *end != '+'))
		return -EINVAL;
	*major = (int)ma;
	*minor = (int)mi;
	return 0;
}

int hv_valid_machine(const char *m)
{
	static const char prefix[] = "pc-i440fx-";
	int ma, mi;
	if (!m || strncmp(m, prefix, sizeof(prefix) - 1) || strlen(m) >= HV_MACHINE_MAX)
		return 0;
	m += sizeof(prefix) - 1;
	/* exactly MAJOR.MINOR, nothing after it */
	if (hv_version_parse(m, &ma, &mi) < 0 || strspn(m, "0123456789.") != strlen(m) ||
	    strchr(strchr(m, '.') + 1, '.'))
		return 0;
	return 1;
}

int hv_machine_for_version(const char *v, char *buf, size_t len)
{
	int ma, mi;
	if (hv_version_parse(v, &ma, &mi) < 0)
		return -EINVAL;
	int n = snprintf(buf, len, "pc-i440fx-%d.%d", ma, mi);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
