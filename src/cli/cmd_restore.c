/* godwit restore: start a new container from a snapshot file (docs/snapshot.md). The file is
 * checked first (its structure and every digest but STATE's; the config, link and log are
 * validated; the image must be on this root); only then is the name claimed, the record
 * written and a shim started in restore mode, which checks STATE while its QEMU starts and
 * lets QEMU read it in place only then. A failure at any step leaves nothing behind. */
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/hv.h"
#include "godwit/image.h"
#include "godwit/knobs.h"
#include "godwit/proc.h"
#include "godwit/snapfile.h"
#include "godwit/util.h"

/* What the CONFIG section holds besides the container's config (written by snapshot.c). */
struct saved {
	struct ct_config cfg;
	unsigned char *link, *log;
	size_t link_len, log_len;
};

static void saved_free(struct saved *s)
{
	ct_config_free(&s->cfg);
	free(s->link);
	free(s->log);
}

/* Decode the base64 field key whose decoded length is in key_len. */
static int get_b64(json_object *o, const char *key, int required, unsigned char **out,
		   size_t *len, struct gw_err *err)
{
	json_object *v, *l;
	char lkey[32];
	snprintf(lkey, sizeof(lkey), "%s_len", key);
	*out = NULL;
	*len = 0;
	if (!json_object_object_get_ex(o, key, &v))
		return required ? gw_err_set(err, EINVAL, "snapshot config: no \"%s\"", key) : 0;
	if (!json_object_is_type(v, json_type_string) || !json_object_object_get_ex(o, lkey, &l) ||
	    !json_object_is_type(l, json_type_int))
		return gw_err_set(err, EINVAL, "snapshot config: bad \"%s\"", key);
	int64_t want = json_object_get_int64(l);
	unsigned char *buf;
	size_t n;
	int r = gw_b64_decode(json_object_get_string(v), &buf, &n);
	if (r == -ENOMEM)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (r < 0 || want < 0 || (uint64_t)want != n) {
		free(buf);
		return gw_err_set(err, EINVAL, "snapshot config: \"%s\" is not valid base64 of %lld "
				  "bytes", key, (long long)want);
	}
	*out = buf;
	*len = n;
	return 0;
}

static int read_saved(struct snap_reader *sr, struct saved *s, struct gw_err *err)
{
	cleanup_free char *txt = NULL;
	size_t len;
	int r = snap_read_config(sr, &txt, &len, err);
	if (r < 0)
		return r;
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, txt, (int)len) : NULL;
	int complete = tok && json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	json_object *c;
	if (!complete || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "container", &c)) {
		json_object_put(o);
		return gw_err_set(err, EINVAL, "snapshot config is not a JSON object with a "
				  "\"container\"");
	}
	r = ct_config_from_json(c, &s->cfg, err);
	if (r < 0)
		gw_err_prefix(err, "snapshot");
	/* godwit writes none with volumes: a file that names some would mount this host's */
	if (r == 0 && s->cfg.volumes && s->cfg.volumes[0])
		r = gw_err_set(err, EINVAL, "snapshot config names volumes (%.80s...): snapshots "
			       "carry none", s->cfg.volumes[0]);
	if (r == 0)
		r = get_b64(o, "link", 1, &s->link, &s->link_len, err);
	if (r == 0)
		r = get_b64(o, "log", 0, &s->log, &s->log_len, err);
	json_object_put(o);
	if (r == 0 && s->link_len == 0)
		r = gw_err_set(err, EINVAL, "snapshot config: empty agent link state");
	return r;
}

static int valid_image_id(const char *id)
{
	if (strncmp(id, "sha256:", 7) || strlen(id) != 7 + 64)
		return 0;
	return strspn(id + 7, "0123456789abcdef") == 64;
}

/* The overlay comes from a file we did not write: refuse a qcow2 that would make QEMU open
 * another host file (an external data file); its backing file is replaced by our base. */
static int check_overlay(const char *path, struct gw_err *err)
{
	unsigned char h[80] = { 0 };
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	ssize_t n = read(fd, h, sizeof(h));
	if (n < 72 || memcmp(h, "QFI\xfb", 4))
		return gw_err_set(err, EINVAL, "the snapshot's disk is not a qcow2 image");
	uint32_t version = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
	if (version == 3 && (n < 80 || (h[79] & 0x04)))
		return gw_err_set(err, EINVAL, "the snapshot's disk uses an external data file");
	if (version != 2 && version != 3)
		return gw_err_set(err, EINVAL, "the snapshot's disk has qcow2 version %u", version);
	return 0;
}

/* restore.state for the shim: the snapshot's absolute path and the digest its STATE must
 * have (the one in the header whose other sections were verified here). */
static int write_state_desc(const char *snap, struct snap_reader *sr, const char *state,
			    struct gw_err *err)
{
	const struct snap_section *st = snap_find(sr, SNAP_SEC_STATE);
	cleanup_free char *abs = realpath(snap, NULL);
	if (!abs)
		return gw_err_sys(err, errno, "%s", snap);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", st->sha256[i]);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "snapshot", json_object_new_string(abs));
	json_object_object_add(o, "sha256", json_object_new_string(hex));
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int r = gw_write_file(state, txt, strlen(txt), 0600, err);
	json_object_put(o);
	return r;
}

/* The record: disk (rebased onto this root's base), config, log, state and link files. */
static int write_record(struct gw_cli *cli, const char *snap, struct snap_reader *sr,
			struct saved *s, const struct gw_image *img, const char *state,
			const char *linkf, struct gw_err *err)
{
	const char *name = s->cfg.name;
	cleanup_free char *disk = ct_path(cli->root, name, "disk.qcow2");
	cleanup_free char *log = ct_path(cli->root, name, "output.log");
	if (!disk || !log)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = snap_extract_file(sr, SNAP_SEC_DISK, disk, err);
	if (r == 0)
		r = check_overlay(disk, err);
	if (r == 0) {
		char *qargv[] = { "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b",
				  img->base_disk, disk, NULL };
		if ((r = gw_run(qargv, err)) < 0)
			gw_err_prefix(err, "rebase the container's disk");
	}
	if (r == 0)
		r = ct_config_save(cli->root, &s->cfg, err);
	if (r == 0)
		r = gw_write_file(log, s->log ? (const char *)s->log : "", s->log_len, 0600, err);
	if (r == 0)
		r = write_state_desc(snap, sr, state, err);
	if (r == 0)
		r = gw_write_file(linkf, s->link, s->link_len, 0600, err);
	return r;
}

int cmd_restore(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "memory-max", required_argument, NULL, 'm' }, { "cpus-max", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *name = NULL;
	int c;
	/* by default what this host has */
	uint64_t max_mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	long max_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'm':
		case 'c':
			if ((c = cli_limit_opt("restore", c, optarg, &max_mem, &max_cpus)) != 0)
				return c;
			break;
		case 'h':
			printf("Usage: godwit restore [--name NAME] [--memory-max SIZE] [--cpus-max N] FILE\n\n"
			       "Start a new container from a snapshot written by `godwit snapshot`: it\n"
			       "continues where the snapshot was taken (memory, processes, disk, log).\n"
			       "The image must be loaded on this host. The file is verified first; a\n"
			       "damaged file changes nothing.\n\n"
			       "  -n, --name NAME        name of the new container (default: the saved name)\n"
			       "      --memory-max SIZE  refuse a snapshot whose container wants more\n"
			       "                         memory (default: this host's; a bare number is MiB)\n"
			       "      --cpus-max N       refuse one that wants more CPUs (default: this\n"
			       "                         host's)\n"
			       "  -h, --help             this help\n");
			return 0;
		default: return cli_usage_error("restore", "invalid option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("restore", "want one snapshot FILE");
	if (name && !gw_valid_name(name))
		return cli_usage_error("restore", "invalid name '%s'", name);
	struct gw_err err = { 0 };
	enum hv_accel accel;
	char reason[256];
	if (hv_choose_accel(cli->accel, &accel, reason, sizeof(reason), &err) < 0)
		return cli_fail("restore", &err);
	struct snap_reader *sr = NULL;
	struct saved s = { 0 };
	struct gw_image img = { 0 };
	/* STATE, the bulk, is checked by the shim while its QEMU starts */
	int r = snap_open_ex(argv[optind], 1u << SNAP_SEC_STATE, &sr, &err);
	/* a host with a snapshot key takes only the files made with it (docs/security.md) */
	if (r == 0 && gw_knobs()->snapshot_key) {
		uint8_t key[SNAP_KEY_MAX];
		size_t klen;
		r = snap_key_load(gw_knobs()->snapshot_key, key, &klen, &err);
		if (r == 0)
			r = snap_check_mac(sr, key, klen, &err);
		OPENSSL_cleanse(key, sizeof(key));
		if (r < 0)
			gw_err_prefix(&err, "%s", argv[optind]);
	}
	if (r == 0)
		r = read_saved(sr, &s, &err);
	if (r == 0 && !snap_find(sr, SNAP_SEC_DISK))
		r = gw_err_set(&err, EINVAL, "%s: snapshot has no DISK section", argv[optind]);
	/* the file's size stays inside what this host's operator allows */
	if (r == 0 && s.cfg.mem_bytes > max_mem)
		r = gw_err_set(&err, E2BIG, "the snapshot's container wants %llu MiB of memory; this "
			       "host allows %llu MiB (restore --memory-max)",
			       (unsigned long long)(s.cfg.mem_bytes >> 20),
			       (unsigned long long)(max_mem >> 20));
	if (r == 0 && s.cfg.cpus > max_cpus)
		r = gw_err_set(&err, E2BIG, "the snapshot's container wants %d CPUs; this host allows "
			       "%ld (restore --cpus-max)", s.cfg.cpus, max_cpus);
	if (r == 0 && !valid_image_id(s.cfg.image_id))
		r = gw_err_set(&err, EINVAL, "snapshot config: bad image id");
	if (r == 0 && gw_image_resolve(cli->root, s.cfg.image_id, &img, &err) < 0)
		r = gw_err_set(&err, ENOENT, "image %s (%s) is not on this host (load it here first)",
			       s.cfg.image_id, s.cfg.image);
	/* this host's name, kit and accelerator; everything else as it was saved */
	if (r == 0 && name)
		snprintf(s.cfg.name, sizeof(s.cfg.name), "%s", name);
	free(s.cfg.kernel);
	free(s.cfg.initrd);
	s.cfg.kernel = s.cfg.initrd = NULL;
	if (r == 0)
		r = cli_kit_paths(cli, &s.cfg.kernel, &s.cfg.initrd, &err);
	snprintf(s.cfg.accel, sizeof(s.cfg.accel), "%s", hv_accel_name(accel));
	s.cfg.created_ns = gw_now_real_ns();

	cleanup_free char *cdir = gw_strdup_printf("%s/containers", cli->root);
	cleanup_free char *dir = ct_dir(cli->root, s.cfg.name);
	cleanup_free char *state = ct_path(cli->root, s.cfg.name, "restore.state");
	cleanup_free char *linkf = ct_path(cli->root, s.cfg.name, "restore.link");
	if (r == 0 && (!cdir || !dir || !state || !linkf))
		r = gw_err_set(&err, ENOMEM, "out of memory");
	if (r == 0)
		r = gw_mkdir_p(cdir, 0700, &err);
	/* creating the directory claims the name */
	if (r == 0 && mkdir(dir, 0700) < 0) {
		r = errno == EEXIST ? gw_err_set(&err, EEXIST, "the name \"%s\" is already in use "
						 "by a container", s.cfg.name)
				    : gw_err_sys(&err, errno, "mkdir %s", dir);
	} else if (r == 0) {
		r = write_record(cli, argv[optind], sr, &s, &img, state, linkf, &err);
		if (r == 0) {
			cli->accel = s.cfg.accel;
			char *extra[] = { "--restore", state, "--link", linkf, NULL };
			r = cli_spawn_shim(cli, s.cfg.name, extra, &err);
		}
		if (r < 0)
			gw_rm_rf(dir, NULL);
	}
	snap_close(sr);
	gw_image_free(&img);
	if (r == 0)
		printf("%s\n", s.cfg.name);
	saved_free(&s);
	return r < 0 ? cli_fail("restore", &err) : 0;
}
