/* The hypervisor driver interface: choosing the accelerator and building QEMU's command line
 * (src/hv/qemu.c), as runV did, so that what is QEMU-specific stays in src/hv. There is no VM
 * object: the shim keeps, per container, QEMU's pid and its monitor connection (a struct qmp,
 * qmp.h), and drives the running QEMU only through the typed QMP calls of hv_vm.h, which take
 * that struct qmp *. */
#ifndef GODWIT_HV_H
#define GODWIT_HV_H

#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "godwit/err.h"
#include "godwit/mount.h"

enum hv_accel { HV_ACCEL_TCG = 0, HV_ACCEL_KVM = 1 };

/* The device configuration of a container VM. Source and destination of a migration build
 * it from the same container config, so QEMU sees the same devices on both sides. */
struct hv_vm_config {
	const char *name;
	const char *machine;		/* "pc-i440fx-X.Y" (hv_valid_machine); NULL = HV_MACHINE_LEGACY */
	const char *kernel;
	const char *initrd;
	const char *cmdline_extra;	/* appended to the kernel command line, may be NULL */
	uint64_t mem_bytes;
	int cpus;
	enum hv_accel accel;
	const char *disk_path;		/* the container's writable qcow2 overlay */
	/* its volumes (godwit/volume.h): drive "volN", a virtio-blk disk whose serial is
	 * "gwvolN" (how the agent finds it), in this order on both ends of a move */
	int n_vols;
	const char *vol_paths[GW_MOUNTS_MAX];
	int vol_ro[GW_MOUNTS_MAX];
	const char *qmp_path;		/* unix socket QEMU listens on for QMP */
	const char *agent_path;		/* unix socket QEMU listens on for the agent virtio-serial port */
	const char *console_path;	/* file for ttyS0 (kernel messages) */
	const char *nic_mac;		/* NULL = no NIC; else a virtio-net NIC with this MAC */
	const char *nic_tap;		/* with nic_mac: a tap device name, or NULL for user net */
	int nic_fd;			/* > 0, with nic_mac, instead of nic_tap: an open tap
					 * QEMU inherits as this fd (made in another network
					 * namespace: godwit-runtime's) */
	int incoming;			/* start with -incoming defer (destination of a migration) */
	int paused;			/* start with -S */
	/* > 0: the listening sockets for QMP and the agent port are these inherited fds
	 * (QEMU binds nothing; qmp_path and agent_path stay the shim's) */
	int qmp_fd, agent_fd;
	int console_fd;			/* > 0: ttyS0 into this connected socket, not console_path */
	int sandbox;			/* QEMU's seccomp filter (-sandbox, docs/security.md) */
	int free_page_hints;		/* a virtio-balloon that hints the guest's free pages to a
					 * pre-copy move (docs/migration-policy.md) */
};

/* QEMU's confinement, entered in its child before exec (src/hv/jail.c): a mount namespace in
 * which `hide` (the state root) is an empty read-only tmpfs that shows only `keep` (paths under
 * it: files or directories, read-only where keep_ro) again at their own paths, /dev/userfaultfd
 * is the user's and (own_pids) /proc is the child's PID namespace's; then uid/gid/groups (uid
 * 0: stays root). */
#define HV_JAIL_KEEP_MAX (8 + GW_MOUNTS_MAX)
#define HV_JAIL_GROUPS_MAX 16
struct hv_jail {
	const char *hide;
	int n_keep;
	const char *keep[HV_JAIL_KEEP_MAX];
	int keep_ro[HV_JAIL_KEEP_MAX];
	uid_t uid;
	gid_t gid;
	int n_groups;
	gid_t groups[HV_JAIL_GROUPS_MAX];
	int own_pids;		/* the caller is PID 1 of a new PID namespace: mount its /proc */
};
int hv_jail_enter(const struct hv_jail *j, struct gw_err *err);
/* QEMU's user (GODWIT_QEMU_USER, default HV_QEMU_USER; "root" runs it as root, confined by
 * the namespace and -sandbox only): its ids and groups into j. */
#define HV_QEMU_USER "godwit-qemu"
int hv_jail_user(struct hv_jail *j, struct gw_err *err);

/* Choose the accelerator for `mode` ("auto", "kvm", "tcg"). auto picks KVM only where it can
 * run a stock guest kernel (a /dev/kvm backed by PVM cannot) and says why in reason. */
int hv_choose_accel(const char *mode, enum hv_accel *out, char *reason, size_t reason_len,
		    struct gw_err *err);
const char *hv_accel_name(enum hv_accel a);

/* hv_choose_accel with the KVM device and the PVM module directory given (for tests). */
int hv_choose_accel_at(const char *mode, const char *kvm_dev, const char *pvm_module,
		       enum hv_accel *out, char *reason, size_t reason_len, struct gw_err *err);

/* Build QEMU's argv for cfg (NULL-terminated, malloc'd strings; free with hv_argv_free). */
int hv_build_argv(const struct hv_vm_config *cfg, char ***argv, struct gw_err *err);
void hv_argv_free(char **argv);

/* The QEMU binary (env GODWIT_QEMU overrides) and its version string ("7.2.22", from the
 * first line of `qemu --version`); hv_qemu_version returns 0 or a negative errno. */
const char *hv_qemu_binary(void);
int hv_qemu_version(char *buf, size_t len);

/* The oldest QEMU godwit live-migrates under TCG: before 9.0 QEMU loses guest writes in a TCG
 * migration (upstream commit 03bfc2188f, docs/qemu.md). */
#define HV_TCG_MIGRATE_MIN_MAJOR 9

/* Machine types. A container keeps the versioned machine type it was created with, so that
 * it can move to a host with a newer QEMU (QEMU keeps old machine types' device layout).
 * Containers created before godwit recorded it ran on HV_MACHINE_LEGACY. */
#define HV_MACHINE_LEGACY "pc-i440fx-7.2"
#define HV_MACHINE_MAX 32
/* 1 if m is "pc-i440fx-MAJOR.MINOR" (what godwit asks QEMU for), else 0 */
int hv_valid_machine(const char *m);
/* The newest i440FX machine type of the QEMU version v ("10.0.2" -> "pc-i440fx-10.0"):
 * 0, or -EINVAL for a version it cannot read */
int hv_machine_for_version(const char *v, char *buf, size_t len);
/* "MAJOR.MINOR..." -> major, minor: 0, or -EINVAL */
int hv_version_parse(const char *v, int *major, int *minor);

#endif
