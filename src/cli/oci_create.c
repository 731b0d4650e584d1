/* godwit-runtime create: a container from an OCI bundle (docs/oci-runtime.md). The bundle's
 * root filesystem becomes the VM's own disk (never a shared folder: the container stays
 * movable), config.json its process and size; the shim boots the VM and holds the process
 * until `start`. The pid file names the shim, whose exit status is the container's. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci.h"
#include "shimctl.h"
#include "godwit/hv.h"
#include "godwit/image.h"
#include "godwit/proc.h"
#include "godwit/runtime_spec.h"
#include "godwit/util.h"

struct create_opts {
	const char *bundle, *pid_file, *console_socket;
	long preserve_fds;
};

static void usage(void)
{
	printf("Usage: godwit-runtime create [OPTIONS] ID\n\n"
	       "Create a container from an OCI bundle: its root filesystem becomes the VM's disk,\n"
	       "the VM boots, and the process waits for `start`.\n\n"
	       "  -b, --bundle DIR          the bundle (default: the current directory)\n"
	       "      --pid-file FILE       write the pid of the container's host process (its\n"
	       "                            shim, whose exit status is the container's)\n"
	       "      --console-socket SOCK for process.terminal: where the terminal's master goes\n"
	       "      --preserve-fds N      only 0: a VM cannot take host file descriptors\n"
	       "      --no-pivot, --no-new-keyring  accepted (the guest has its own kernel)\n"
	       "  -h, --help                this help\n");
}

/* The bundle's bind mounts: a file is copied into the disk (podman's /etc/hosts,
 * /etc/resolv.conf, /etc/hostname, /run/.containerenv); a directory cannot be shared with a VM */
static int bind_files(const struct rt_spec *s, struct basedisk_file *f, struct gw_err *err)
{
	for (int i = 0; i < s->nbinds; i++) {
		struct stat st;
		if (stat(s->binds[i].src, &st) < 0)
			return gw_err_sys(err, errno, "mounts: %s (bound at %s)", s->binds[i].src,
					  s->binds[i].dst);
		if (!S_ISREG(st.st_mode))
			return gw_err_set(err, ENOTSUP, "mounts: %s at %s: a host directory cannot "
					  "be shared with the container's VM (files are copied in; "
					  "docs/oci-runtime.md)", s->binds[i].src, s->binds[i].dst);
		f[i] = (struct basedisk_file){ s->binds[i].src, s->binds[i].dst };
	}
	return 0;
}

/* the rootfs as an ext4 disk sized like an image's base disk, the bound files in it, in
 * qcow2 so it is the container's disk.qcow2 like any other */
static int make_disk(const char *rootfs, const struct basedisk_file *files, size_t nfiles,
		     const char *dir, struct gw_err *err)
{
	uint64_t size;
	cleanup_free char *raw = gw_strdup_printf("%s/rootfs.ext4", dir);
	cleanup_free char *disk = gw_strdup_printf("%s/disk.qcow2", dir);
	if (!raw || !disk)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = basedisk_tree_size(rootfs, &size, err);
	if (r == 0)
		r = basedisk_build(rootfs, raw, basedisk_virtual_size(size), err);
	if (r == 0)
		r = basedisk_add_files(raw, files, nfiles, err);
	if (r == 0) {
		char *argv[] = { "qemu-img", "convert", "-q", "-O", "qcow2", raw, disk, NULL };
		if ((r = gw_run(argv, err)) < 0)
			gw_err_prefix(err, "convert the root disk");
	}
	unlink(raw);
	return r < 0 ? gw_err_prefix(err, "make the container's disk from %s", rootfs) : 0;
}

/* godwit's options as annotations (podman run --annotation K=V): org.godwit.memory (a size,
 * a bare number is MiB), org.godwit.cpus (1-64), org.godwit.machine (pc-i440fx-X.Y); any
 * other org.godwit.* is refused, so a typo does not pass unnoticed */
#define ANN_PREFIX "org.godwit."
static int godwit_annotations(const char *text, struct rt_spec *s, const char **machine,
			      struct gw_err *err)
{
	json_object *a = json_tokener_parse(text);
	int r = 0;
	json_object_object_foreach(a, k, v) {
		const char *val = json_object_get_string(v);
		char *end;
		uint64_t size;
		long n;
		if (strncmp(k, ANN_PREFIX, strlen(ANN_PREFIX)))
			continue;
		const char *opt = k + strlen(ANN_PREFIX);
		if (!strcmp(opt, "memory")) {
			if (gw_parse_size(val, 1ULL << 20, &size) < 0 || size < RTSPEC_MEM_MIN ||
			    size > (1ULL << 40))
				r = gw_err_set(err, EINVAL, "annotation %s: \"%.32s\" is not a size "
					       "from 64M to 1T", k, val);
			else
				s->mem_bytes = size & ~((1ULL << 20) - 1);
		} else if (!strcmp(opt, "cpus")) {
			n = strtol(val, &end, 10);
			if (*end || n < 1 || n > RTSPEC_CPUS_MAX)
				r = gw_err_set(err, EINVAL, "annotation %s: \"%.32s\" is not 1 to %d",
					       k, val, RTSPEC_CPUS_MAX);
			else
				s->cpus = (int)n;
		} else if (!strcmp(opt, "machine")) {
			if (!hv_valid_machine(val))
				r = gw_err_set(err, EINVAL, "annotation %s: \"%.32s\" is not "
					       "pc-i440fx-MAJOR.MINOR", k, val);
			else
				*machine = val;
		} else {
			r = gw_err_set(err, EINVAL, "annotation %.64s: not a godwit option (memory, "
				       "cpus, machine)", k);
		}
		if (r < 0)
			break;
	}
	if (r == 0 && *machine && !(*machine = strdup(*machine)))
		r = gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(a);
	return r;
}

static int fill_config(struct oci_rt *rt, const char *id, const char *bundle,
		       struct rt_spec *s, struct ct_config *cfg, struct gw_err *err)
{
	const char *machine = NULL;
	int r = godwit_annotations(s->annotations, s, &machine, err);
	if (r == 0)
		r = cli_vm_basics(&rt->cli, machine, cfg, err);
	free((char *)machine);
	if (r < 0)
		return r;
	snprintf(cfg->name, sizeof(cfg->name), "%s", id);
	if ((size_t)snprintf(cfg->image, sizeof(cfg->image), "bundle:%s", bundle) >=
	    sizeof(cfg->image))
		return gw_err_set(err, ENAMETOOLONG, "bundle path too long: %s", bundle);
	cfg->argv = steal_ptr(s->args);
	cfg->env = steal_ptr(s->env);
	cfg->cwd = steal_ptr(s->cwd);
	cfg->user = gw_strdup_printf("%u:%u", s->uid, s->gid);
	cfg->hostname = strdup(s->hostname ? s->hostname : id);
	cfg->mem_bytes = s->mem_bytes;
	cfg->cpus = s->cpus;
	/* as runc: the process reads what its stdin (conmon's pipe, or the terminal) gives */
	cfg->open_stdin = 1;
	cfg->tty = s->terminal;
	cfg->netns = steal_ptr(s->netns);
	cfg->rlimits = steal_ptr(s->rlimits);
	cfg->created_ns = gw_now_real_ns();
	if (!cfg->user || !cfg->hostname)
		return gw_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int write_rec(struct oci_rt *rt, const char *id, const char *bundle, const char *rootfs,
		     const char *annotations, struct gw_err *err)
{
	char ts[40];
	gw_fmt_rfc3339(gw_now_real_ns(), ts);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "bundle", json_object_new_string(bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(rootfs));
	json_object_object_add(o, "created", json_object_new_string(ts));
	json_object_object_add(o, "annotations", json_tokener_parse(annotations));
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	cleanup_free char *path = ct_path(rt->cli.root, id, "oci.json");
	int r = path ? gw_write_file(path, txt, strlen(txt), 0600, err)
		     : gw_err_set(err, ENOMEM, "out of memory");
	json_object_put(o);
	return r;
}

static int write_pid_file(struct oci_rt *rt, const char *id, const char *path,
			  struct gw_err *err)
{
	struct ct_status st;
	int r = ct_status_load(rt->cli.root, id, &st, err);
	if (r == 0 && st.shim_pid <= 0)
		r = gw_err_set(err, EIO, "the shim did not say its pid");
	if (r < 0 || !path)
		return r;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", (int)st.shim_pid);
	return gw_write_file(path, buf, (size_t)n, 0644, err);
}

static int create(struct oci_rt *rt, const char *id, const struct create_opts *o,
		  struct gw_err *err)
{
	cleanup_free char *bundle = realpath(o->bundle, NULL);
	if (!bundle)
		return gw_err_sys(err, errno, "bundle %s", o->bundle);
	cleanup_free char *cfgpath = gw_strdup_printf("%s/config.json", bundle);
	cleanup_free char *txt = NULL;
	size_t len = 0;
	int r = gw_read_file(cfgpath, RTSPEC_JSON_MAX, &txt, &len, err);
	if (r < 0)
		return r;
	struct rt_spec s;
	if ((r = rt_spec_parse(txt, len, &s, err)) < 0) {
		rt_spec_free(&s);
		return gw_err_prefix(err, "%s", cfgpath);
	}
	if (s.terminal && !o->console_socket)
		r = gw_err_set(err, EINVAL, "process.terminal needs --console-socket (where the "
			       "terminal's master goes)");
	else if (!s.terminal && o->console_socket)
		r = gw_err_set(err, EINVAL, "--console-socket given, but process.terminal is false");
	cleanup_free char *rootfs = NULL;
	struct basedisk_file files[RTSPEC_BINDS_MAX];
	if (r == 0)
		r = bind_files(&s, files, err);
	if (r == 0) {
		cleanup_free char *rp = s.root_path[0] == '/' ? strdup(s.root_path)
					: gw_strdup_printf("%s/%s", bundle, s.root_path);
		struct stat sb;
		if (!rp || !(rootfs = realpath(rp, NULL)) || stat(rootfs, &sb) < 0 ||
		    !S_ISDIR(sb.st_mode))
			r = gw_err_set(err, ENOTDIR, "root.path %s: not a directory", s.root_path);
	}
	cleanup_free char *cdir = gw_strdup_printf("%s/containers", rt->cli.root);
	cleanup_free char *dir = ct_dir(rt->cli.root, id);
	if (r == 0 && (r = gw_mkdir_p(cdir, 0700, err)) == 0 && mkdir(dir, 0700) < 0)
		r = errno == EEXIST ? gw_err_set(err, EEXIST, "container with id exists: %s", id)
				    : gw_err_sys(err, errno, "mkdir %s", dir);
	if (r < 0) {
		rt_spec_free(&s);
		return r;
	}
	/* the directory is ours now: on any failure below it goes */
	struct ct_config cfg = { 0 };
	r = make_disk(rootfs, files, (size_t)s.nbinds, dir, err);
	if (r == 0)
		r = fill_config(rt, id, bundle, &s, &cfg, err);
	if (r == 0)
		r = ct_config_save(rt->cli.root, &cfg, err);
	if (r == 0)
		r = write_rec(rt, id, bundle, rootfs, s.annotations, err);
	char *extra[] = { "--hold-start", NULL };
	/* the container's stdio: ours (conmon's pipes), or a terminal's slave */
	int stdio[3] = { 0, 1, 2 }, slave = -1;
	if (r == 0 && s.terminal && (slave = r = oci_console_open(o->console_socket, err)) >= 0) {
		stdio[0] = stdio[1] = stdio[2] = slave;
		r = 0;
	}
	if (r == 0)
		r = cli_spawn_shim_ex(&rt->cli, id, extra, stdio, err);
	if (slave >= 0)
		close(slave);
	if (r == 0 && (r = write_pid_file(rt, id, o->pid_file, err)) < 0)
		cli_rm_one(&rt->cli, id, 1, NULL);
	ct_config_free(&cfg);
	rt_spec_free(&s);
	if (r < 0)
		gw_rm_rf(dir, NULL);
	return r;
}

int oci_create(struct oci_rt *rt, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "console-socket", required_argument, NULL, 'c' },
		{ "preserve-fds", required_argument, NULL, 'f' },
		{ "no-pivot", no_argument, NULL, 'n' },
		{ "no-new-keyring", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct create_opts o = { .bundle = "." };
	int c;
	while ((c = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': o.bundle = optarg; break;
		case 'p': o.pid_file = optarg; break;
		case 'c': o.console_socket = optarg; break;
		case 'f': {
			char *end;
			o.preserve_fds = strtol(optarg, &end, 10);
			if (*end || o.preserve_fds != 0)
				return oci_failf(rt, "create: --preserve-fds %s: a VM cannot take the "
						 "host's file descriptors (only 0)", optarg);
			break;
		}
		case 'n': case 'k': break;
		case 'h': usage(); return 0;
		default: return oci_failf(rt, "create: invalid option (godwit-runtime create -h)");
		}
	}
	if (argc - optind != 1)
		return oci_failf(rt, "create: want one container ID");
	const char *id = argv[optind];
	struct gw_err err = { 0 };
	if (!gw_valid_name(id))
		return oci_failf(rt, "invalid container id \"%.80s\" (letters, digits, _ . -; at "
				 "most 64)", id);
	if (create(rt, id, &o, &err) < 0)
		return oci_fail(rt, &err);
	return 0;
}
