/* Unit tests for the QEMU driver's pure parts (src/hv/qemu.c): the command line built for a
 * container VM (devices, ids and addresses that must match on both ends of a migration,
 * incoming/paused/NIC/accelerator variants, rejection of bad configs) and the accelerator
 * choice, with fake /dev/kvm and kvm_pvm paths. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "godwit/hv.h"
#include "godwit/knobs.h"

#define HV_CMDLINE_BASE_TEST                                                               \
	"console=ttyS0 quiet panic=-1 oops=panic 8250.nr_uarts=1 i8042.noaux i8042.nomux "       \
	"i8042.nopnp i8042.dumbkbd no_timer_check cryptomgr.notests pci=lastbus=0 nowatchdog "    \
	"init_on_alloc=0"
#include "godwit/util.h"

static struct hv_vm_config sample(void)
{
	return (struct hv_vm_config){
		.name = "web",
		.kernel = "/k/vmlinuz",
		.initrd = "/k/initrd.img",
		.mem_bytes = 256ULL << 20,
		.cpus = 2,
		.accel = HV_ACCEL_TCG,
		.disk_path = "/var/lib/godwit/containers/web/overlay.qcow2",
		.qmp_path = "/var/lib/godwit/containers/web/qmp.sock",
		.agent_path = "/var/lib/godwit/containers/web/agent.sock",
		.console_path = "/var/lib/godwit/containers/web/console.log",
	};
}

/* Index of the argument equal to s, or -1. */
static int find(char **argv, const char *s)
{
	for (int i = 0; argv[i]; i++)
		if (strcmp(argv[i], s) == 0)
			return i;
	return -1;
}

/* The value following option opt (first occurrence), or NULL. */
static const char *opt(char **argv, const char *o)
{
	int i = find(argv, o);
	return i >= 0 ? argv[i + 1] : NULL;
}

static int has_substr(char **argv, const char *s)
{
	for (int i = 0; argv[i]; i++)
		if (strstr(argv[i], s))
			return 1;
	return 0;
}

static char **build(const struct hv_vm_config *c)
{
	char **argv = NULL;
	struct gw_err err = { 0 };
	int rc = hv_build_argv(c, &argv, &err);
	if (rc < 0)
		fail_msg("hv_build_argv: %s", err.msg);
	return argv;
}

static void test_basic_tcg(void **state)
{
	(void)state;
	unsetenv("GODWIT_QEMU");
	gw_knobs_load();
	struct hv_vm_config c = sample();
	char **argv = build(&c);
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_string_equal(opt(argv, "-name"), "guest=web,debug-threads=on");
	/* no machine in the config: a container from before godwit kept one */
	assert_string_equal(opt(argv, "-machine"), HV_MACHINE_LEGACY);
	assert_string_equal(opt(argv, "-accel"), "tcg,tb-size=256");
	assert_non_null(strstr(opt(argv, "-cpu"), "qemu64"));
	assert_string_equal(opt(argv, "-m"), "256M");
	assert_string_equal(opt(argv, "-smp"), "2");
	assert_true(find(argv, "-nodefaults") > 0);
	assert_true(find(argv, "-no-user-config") > 0);
	assert_true(find(argv, "-nographic") > 0);
	assert_true(find(argv, "-no-reboot") > 0);
	assert_string_equal(opt(argv, "-kernel"), "/k/vmlinuz");
	assert_string_equal(opt(argv, "-initrd"), "/k/initrd.img");
	assert_string_equal(opt(argv, "-append"), HV_CMDLINE_BASE_TEST);
	assert_true(has_substr(argv, "file,id=console0,path=/var/lib/godwit/containers/web/"
				     "console.log"));
	assert_string_equal(opt(argv, "-serial"), "chardev:console0");
	assert_true(has_substr(argv, "socket,id=qmp0,path=/var/lib/godwit/containers/web/qmp.sock,"
				     "server=on,wait=off"));
	assert_string_equal(opt(argv, "-mon"), "chardev=qmp0,mode=control");
	assert_true(has_substr(argv, "if=none,id=disk0,format=qcow2,"));
	assert_true(has_substr(argv, "file=/var/lib/godwit/containers/web/overlay.qcow2"));
	assert_true(has_substr(argv, "virtio-blk-pci,id=vda,drive=disk0,bus=pci.0,addr=0x4"));
	assert_true(has_substr(argv, "virtio-serial-pci,id=vser0,"));
	assert_true(has_substr(argv, "socket,id=agent0,path=/var/lib/godwit/containers/web/"
				     "agent.sock,server=on,wait=off"));
	assert_true(has_substr(argv, "chardev=agent0,name=org.godwit.agent"));
	/* Not asked for: */
	assert_int_equal(find(argv, "-incoming"), -1);
	assert_int_equal(find(argv, "-S"), -1);
	assert_int_equal(find(argv, "-netdev"), -1);
	assert_false(has_substr(argv, "virtio-net"));
	assert_false(has_substr(argv, "virtio-balloon"));
	assert_int_equal(find(argv, "-object"), -1);
	hv_argv_free(argv);
}

/* The free-page-hint device, for containers made with it: its own iothread, a fixed slot. */
static void test_free_page_hints(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	c.free_page_hints = 1;
	char **argv = build(&c);
	assert_string_equal(opt(argv, "-object"), "iothread,id=iothread-hints");
	assert_true(has_substr(argv, "virtio-balloon-pci,id=balloon0,free-page-hint=on,"
				     "iothread=iothread-hints,bus=pci.0,addr=0x1f"));
	hv_argv_free(argv);
}

static void test_incoming_paused_kvm_extra(void **state)
{
	(void)state;
	setenv("GODWIT_QEMU", "/opt/qemu/bin/qemu-system-x86_64", 1);
	gw_knobs_load();
	struct hv_vm_config c = sample();
	c.incoming = 1;
	c.paused = 1;
	c.accel = HV_ACCEL_KVM;
	c.cmdline_extra = "godwit.debug=1";
	c.mem_bytes = 1ULL << 30;
	char **argv = build(&c);
	unsetenv("GODWIT_QEMU");
	gw_knobs_load();
	assert_string_equal(argv[0], "/opt/qemu/bin/qemu-system-x86_64");
	assert_string_equal(opt(argv, "-incoming"), "defer");
	assert_true(find(argv, "-S") > 0);
	assert_string_equal(opt(argv, "-accel"), "kvm");
	assert_string_equal(opt(argv, "-cpu"), "host");
	assert_string_equal(opt(argv, "-m"), "1024M");
	assert_string_equal(opt(argv, "-append"), HV_CMDLINE_BASE_TEST " godwit.debug=1");
	hv_argv_free(argv);
}

static void test_nic_variants(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	c.nic_mac = "52:54:00:ab:cd:ef";
	char **argv = build(&c);
	assert_string_equal(opt(argv, "-netdev"), "user,id=net0,restrict=on");
	assert_true(has_substr(argv, "virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:ab:cd:ef,"
				     "bus=pci.0,addr=0x3"));
	hv_argv_free(argv);

	c.nic_tap = "gw-web0";
	argv = build(&c);
	assert_string_equal(opt(argv, "-netdev"),
			    "tap,id=net0,ifname=gw-web0,script=no,downscript=no");
	assert_true(has_substr(argv, "mac=52:54:00:ab:cd:ef"));
	hv_argv_free(argv);

	/* godwit-runtime's tap, made in another network namespace: an inherited fd */
	c.nic_tap = NULL;
	c.nic_fd = 6;
	argv = build(&c);
	assert_string_equal(opt(argv, "-netdev"), "tap,id=net0,fd=6");
	hv_argv_free(argv);
}

static void test_optional_devices_and_escaping(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	c.disk_path = NULL;
	c.agent_path = NULL;
	c.initrd = NULL;
	c.qmp_path = "/tmp/a,b/qmp.sock";
	char **argv = build(&c);
	assert_int_equal(find(argv, "-drive"), -1);
	assert_int_equal(find(argv, "-initrd"), -1);
	assert_false(has_substr(argv, "virtio-serial"));
	/* A comma in a path must not start a new QEMU option. */
	assert_true(has_substr(argv, "path=/tmp/a,,b/qmp.sock,server=on"));
	hv_argv_free(argv);
}

static void expect_invalid(struct hv_vm_config *c, const char *needle)
{
	char **argv = (char **)1;
	struct gw_err err = { 0 };
	int rc = hv_build_argv(c, &argv, &err);
	assert_true(rc < 0);
	assert_null(argv);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_machine_types(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	c.machine = "pc-i440fx-10.0";
	char **argv = build(&c);
	assert_string_equal(opt(argv, "-machine"), "pc-i440fx-10.0");
	hv_argv_free(argv);
	const char *good[] = { "pc-i440fx-7.2", "pc-i440fx-9.0", "pc-i440fx-10.0", "pc-i440fx-10.12" };
	const char *bad[] = { "pc", "q35", "pc-i440fx-", "pc-i440fx-10", "pc-i440fx-10.0.2",
			      "pc-i440fx-10.0,accel=kvm", "pc-i440fx-.0", "pc-i440fx-a.b",
			      "pc-i440fx-10.0 ", "pc-q35-10.0", "pc-i440fx-1000.0",
			      "pc-i440fx-99999999999999999999.0" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(hv_valid_machine(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (hv_valid_machine(bad[i]))
			fail_msg("accepted machine \"%s\"", bad[i]);
	}
	char m[HV_MACHINE_MAX];
	assert_int_equal(hv_machine_for_version("10.0.2", m, sizeof(m)), 0);
	assert_string_equal(m, "pc-i440fx-10.0");
	assert_int_equal(hv_machine_for_version("7.2.22", m, sizeof(m)), 0);
	assert_string_equal(m, "pc-i440fx-7.2");
	assert_int_equal(hv_machine_for_version("9.1", m, sizeof(m)), 0);
	assert_string_equal(m, "pc-i440fx-9.1");
	assert_int_equal(hv_machine_for_version("ten", m, sizeof(m)), -EINVAL);
	assert_int_equal(hv_machine_for_version("10", m, sizeof(m)), -EINVAL);
	assert_int_equal(hv_machine_for_version("", m, sizeof(m)), -EINVAL);
	int ma, mi;
	assert_int_equal(hv_version_parse("10.0.2", &ma, &mi), 0);
	assert_int_equal(ma, 10);
	assert_int_equal(mi, 0);
	assert_int_equal(hv_version_parse("8.2.0+ds-1", &ma, &mi), 0);
	assert_int_equal(ma * 100 + mi, 802);
	assert_int_equal(hv_version_parse("10.x", &ma, &mi), -EINVAL);
}

static void test_invalid_configs(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	c.machine = "pc-i440fx-10.0,x-evil=on";
	expect_invalid(&c, "machine type");
	c = sample();
	c.name = "../evil";
	expect_invalid(&c, "invalid name");
	c = sample();
	c.mem_bytes = (256ULL << 20) + 1;
	expect_invalid(&c, "MiB");
	c = sample();
	c.mem_bytes = 1 << 20;
	expect_invalid(&c, "MiB");
	c = sample();
	c.cpus = 0;
	expect_invalid(&c, "cpus");
	c = sample();
	c.nic_mac = "52:54:00:ab:cd";
	expect_invalid(&c, "MAC");
	c = sample();
	c.nic_mac = "01:00:5e:00:00:01"; /* multicast */
	expect_invalid(&c, "MAC");
	c = sample();
	c.nic_mac = "52:54:00:ab:cd:ef";
	c.nic_tap = "tap0,script=/bin/evil";
	expect_invalid(&c, "tap device name");
	c = sample();
	c.nic_tap = "tap0";
	expect_invalid(&c, "without a MAC");
	c = sample();
	c.nic_fd = 6;
	expect_invalid(&c, "without a MAC");
	c.nic_mac = "52:54:00:ab:cd:ef";
	c.nic_tap = "tap0";
	expect_invalid(&c, "by name and by fd");
	c = sample();
	c.kernel = NULL;
	expect_invalid(&c, "no kernel");
	c = sample();
	c.accel = (enum hv_accel)7;
	expect_invalid(&c, "accelerator");
	c = sample();
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	c.cmdline_extra = big;
	expect_invalid(&c, "command line");
}

/* A scratch dir with a fake /dev/kvm (a regular file opens fine) and optional kvm_pvm. */
static void scratch(char *dir, char *kvm, char *pvm)
{
	strcpy(dir, "/tmp/godwit-test-accel-XXXXXX");
	assert_non_null(mkdtemp(dir));
	sprintf(kvm, "%s/kvm", dir);
	sprintf(pvm, "%s/kvm_pvm", dir);
}

static void test_choose_accel(void **state)
{
	(void)state;
	char dir[64], kvm[96], pvm[96], reason[256];
	struct gw_err err = { 0 };
	enum hv_accel a = HV_ACCEL_KVM;
	scratch(dir, kvm, pvm);

	assert_int_equal(hv_choose_accel("tcg", &a, reason, sizeof(reason), &err), 0);
	assert_int_equal(a, HV_ACCEL_TCG);
	assert_string_equal(hv_accel_name(a), "tcg");

	assert_int_equal(hv_choose_accel("kvmm", &a, reason, sizeof(reason), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "kvmm"));

	/* No /dev/kvm: kvm is an error, auto falls back to TCG and says why. */
	assert_int_equal(hv_choose_accel_at("kvm", kvm, pvm, &a, reason, sizeof(reason), &err),
			 -ENODEV);
	assert_int_equal(hv_choose_accel_at("auto", kvm, pvm, &a, reason, sizeof(reason), &err),
			 0);
	assert_int_equal(a, HV_ACCEL_TCG);
	assert_non_null(strstr(reason, "tcg: "));

	/* /dev/kvm usable. */
	int fd = open(kvm, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(hv_choose_accel_at("auto", kvm, pvm, &a, reason, sizeof(reason), &err),
			 0);
	assert_int_equal(a, HV_ACCEL_KVM);
	assert_string_equal(hv_accel_name(a), "kvm");
	assert_int_equal(hv_choose_accel_at("kvm", kvm, pvm, &a, reason, sizeof(reason), &err), 0);
	assert_int_equal(a, HV_ACCEL_KVM);

	/* PVM-backed: kvm refuses with the reason, auto picks TCG. */
	assert_int_equal(mkdir(pvm, 0700), 0);
	assert_int_equal(hv_choose_accel_at("kvm", kvm, pvm, &a, reason, sizeof(reason), &err),
			 -ENODEV);
	assert_non_null(strstr(err.msg, "PVM-backed (kvm_pvm) and cannot run a stock guest kernel"));
	assert_int_equal(hv_choose_accel_at("auto", kvm, pvm, &a, reason, sizeof(reason), &err),
			 0);
	assert_int_equal(a, HV_ACCEL_TCG);
	assert_non_null(strstr(reason, "tcg: "));
	assert_non_null(strstr(reason, "PVM-backed (kvm_pvm loaded)"));

	rmdir(pvm);
	unlink(kvm);
	rmdir(dir);
}

static void test_qemu_version(void **state)
{
	(void)state;
	char v[64];
	setenv("GODWIT_QEMU", "/nonexistent/qemu", 1);
	gw_knobs_load();
	assert_true(hv_qemu_version(v, sizeof(v)) < 0);
	unsetenv("GODWIT_QEMU");
	gw_knobs_load();
	if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
		skip();
	assert_int_equal(hv_qemu_version(v, sizeof(v)), 0);
	assert_true(v[0] >= '1' && v[0] <= '9');
	assert_non_null(strchr(v, '.'));
	assert_true(hv_qemu_version(v, 2) < 0);
}

/* Volumes: drive volN and a virtio-blk disk with serial gwvolN at slot 6+N, read-only when
 * asked, after the overlay; commas in a path escaped; too many or a relative path refused. */
static void test_volumes(void **state)
{
	(void)state;
	struct hv_vm_config c = sample();
	char **argv;
	struct gw_err err = { 0 };
	c.n_vols = 2;
	c.vol_paths[0] = "/r/volumes/data/disk.qcow2";
	c.vol_paths[1] = "/r/volumes/a,b/disk.qcow2";
	c.vol_ro[1] = 1;
	assert_int_equal(hv_build_argv(&c, &argv, &err), 0);
	assert_true(has_substr(argv, "if=none,id=vol0,format=qcow2,discard=unmap,"
				     "file=/r/volumes/data/disk.qcow2"));
	assert_true(has_substr(argv, "id=vol1,format=qcow2,discard=unmap,"
				     "file=/r/volumes/a,,b/disk.qcow2,readonly=on"));
	assert_true(has_substr(argv, "virtio-blk-pci,id=vdv0,drive=vol0,serial=gwvol0,bus=pci.0,"
				     "addr=0x6"));
	assert_true(has_substr(argv, "virtio-blk-pci,id=vdv1,drive=vol1,serial=gwvol1,bus=pci.0,"
				     "addr=0x7"));
	assert_false(has_substr(argv, "id=vol0,format=qcow2,discard=unmap,file=/r/volumes/data/"
				      "disk.qcow2,readonly"));
	/* the overlay stays the first disk (the agent's /dev/vda) */
	int d0 = -1, v0 = -1;
	for (int i = 0; argv[i]; i++) {
		if (d0 < 0 && strstr(argv[i], "id=disk0"))
			d0 = i;
		if (v0 < 0 && strstr(argv[i], "id=vol0"))
			v0 = i;
	}
	assert_true(d0 >= 0 && v0 > d0);
	hv_argv_free(argv);
	c.n_vols = GW_MOUNTS_MAX + 1;
	assert_int_equal(hv_build_argv(&c, &argv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "volumes (at most 4)"));
	c.n_vols = 1;
	c.vol_paths[0] = "rel/disk.qcow2";
	assert_int_equal(hv_build_argv(&c, &argv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no absolute path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_tcg),
		cmocka_unit_test(test_incoming_paused_kvm_extra),
		cmocka_unit_test(test_nic_variants),
		cmocka_unit_test(test_optional_devices_and_escaping),
		cmocka_unit_test(test_machine_types),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_free_page_hints),
		cmocka_unit_test(test_invalid_configs),
		cmocka_unit_test(test_choose_accel),
		cmocka_unit_test(test_qemu_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
