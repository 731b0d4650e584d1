/* godwit run: create a container from an image (a qcow2 overlay on the image's base disk and
 * a config), start its shim and VM, then either print its name (-d) or attach to its output
 * and exit with its status. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/hv.h"
#include "godwit/image.h"
#include "godwit/mount.h"
#include "godwit/proc.h"
#include "godwit/util.h"
#include "godwit/volume.h"

#define MAX_ENV 1024
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
		   "Run a command in a new container VM.\n\n"
		   "Options:\n"
		   "  -d, --detach          run in the background and print the container's name\n"
		   "  -i, --interactive     keep the container's stdin open and send ours to it\n"
		   "  -t, --tty             give the container's process a terminal (in the guest);\n"
		   "                        ours goes raw while attached and its size follows\n"
		   "      --detach-keys KEYS  the keys that detach and leave it running\n"
		   "                        (default ctrl-p,ctrl-q; \"\": none)\n"
		   "  -n, --name NAME       name the container (default: generated)\n"
		   "      --rm              remove the container when it exits\n"
		   "  -m, --memory SIZE     guest memory (default 512M, at least 64M; e.g. 1G;\n"
		   "                        a bare number is MiB)\n"
		   "      --cpus N          virtual CPUs (1 to 64, default 1)\n"
		   "  -e, --env K=V         set an environment variable (repeatable)\n"
		   "  -w, --workdir DIR     working directory inside the container (absolute)\n"
		   "  -u, --user USER       user[:group] or uid[:gid]\n"
		   "      --hostname NAME   the container's host name (default: its name)\n"
		   "      --entrypoint CMD  override the image's entrypoint (\"\" clears it)\n"
		   "      --machine TYPE    QEMU machine type pc-i440fx-X.Y (default: this QEMU's\n"
		   "                        newest); a container keeps it, so it can move to any\n"
		   "                        host whose QEMU still has that type\n"
		   "      --network NAME    put the container on network NAME (godwit network\n"
		   "                        create); \"none\": no network; the default: none,\n"
		   "                        or with -p the network \"godwit\" (10.88.0.0/16, NAT,\n"
		   "                        made on first use)\n"
		   "      --ip IP           its address there (default: the next free one)\n"
		   "      --mac MAC         its MAC address (default: 52:54:00 and 3 random bytes)\n"
		   "  -p, --publish [HOSTIP:]HOSTPORT:PORT[/tcp|udp]\n"
		   "                        the host's port (every address, 127.0.0.1 too, or\n"
		   "                        HOSTIP) reaches the container's PORT; ranges\n"
		   "                        8080-8081:80-81; repeatable; not with --network none\n"
		   "  -v, --volume NAME:/PATH[:ro]\n"
		   "                        mount named volume NAME (made, 1G, if missing: godwit\n"
		   "                        volume) at PATH; it moves with the container; up to 4;\n"
		   "                        host directories cannot be mounted\n"
		   "      --restart POLICY  no (default), always, unless-stopped (the same as\n"
		   "                        always here) or on-failure[:N]: boot the VM again\n"
		   "                        when its process exits (on-failure: with a status\n"
		   "                        other than 0, at most N times); not after stop\n"
		   "      --log-opt max-size=SIZE | max-file=N\n"
		   "                        rotate the output log at SIZE (default 20m, at least\n"
		   "                        4k; a bare number is bytes), keeping N files in all\n"
		   "                        (default 5, 1 to 100); repeatable\n"
		   "  -h, --help            this help\n");
}

static int add_env(char **env, size_t *n, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return -EINVAL;
	size_t klen = (size_t)(eq - kv) + 1;
	for (size_t i = 0; i < *n; i++) {
		if (!strncmp(env[i], kv, klen)) {
			free(env[i]);
			env[i] = strdup(kv);
			return env[i] ? 0 : -ENOMEM;
		}
	}
	if (*n >= MAX_ENV)
		return -E2BIG;
	env[(*n)++] = strdup(kv);
	return 0;
}

static void random_name(char *buf, size_t len)
{
	unsigned char r[4] = { 0 };
	FILE *f = fopen("/dev/urandom", "re");
	if (f) {
		if (fread(r, 1, sizeof(r), f) != sizeof(r))
			memset(r, 0, sizeof(r));
		fclose(f);
	}
	snprintf(buf, len, "godwit-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

/* Build the container's config from the image, the flags and the command line. */
static int make_config(struct ct_config *c, const struct gw_image *img, char **argv, int argc,
		       const char *entrypoint, char **uenv, size_t nuenv, struct gw_err *err)
{
	size_t n = 0, cap = (size_t)argc + ct_strv_len(img->entrypoint) + ct_strv_len(img->cmd) + 2;
	c->argv = calloc(cap, sizeof(char *));
	c->env = calloc(MAX_ENV + 2, sizeof(char *));
	if (!c->argv || !c->env)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (entrypoint) {
		if (*entrypoint)
			c->argv[n++] = strdup(entrypoint);
	} else {
		for (size_t i = 0; img->entrypoint && img->entrypoint[i]; i++)
			c->argv[n++] = strdup(img->entrypoint[i]);
	}
	if (argc > 0) {
		for (int i = 0; i < argc; i++)
			c->argv[n++] = strdup(argv[i]);
	} else if (!entrypoint) {
		for (size_t i = 0; img->cmd && img->cmd[i]; i++)
			c->argv[n++] = strdup(img->cmd[i]);
	}
	if (n == 0)
		return gw_err_set(err, EINVAL, "no command: the image has no entrypoint or cmd and "
				  "none was given");
	size_t ne = 0;
	int has_path = 0;
	for (size_t i = 0; img->env && img->env[i]; i++)
		add_env(c->env, &ne, img->env[i]);
	for (size_t i = 0; i < nuenv; i++)
		add_env(c->env, &ne, uenv[i]);
	for (size_t i = 0; i < ne; i++)
		has_path |= !strncmp(c->env[i], "PATH=", 5);
	if (!has_path)
		add_env(c->env, &ne, DEFAULT_PATH);
	return 0;
}

/* What `run` was asked for */
struct run_opts {
	int detach, autorm, cpus;
	int interactive, tty;
	const char *detach_keys;
	const char *name, *workdir, *user, *hostname, *ep, *umachine;
	struct run_net net;
	char *vols[GW_MOUNTS_MAX + 1];	/* -v specs as given, NULL-terminated */
	size_t nvols;
	uint64_t mem;
	uint64_t log_max_size;	/* --log-opt max-size= (0: the default) */
	int log_max_file;	/* --log-opt max-file= */
	enum ct_restart restart; /* --restart */
	int restart_max;
	char *uenv[MAX_ENV];
	size_t nuenv;
};

/* one option into o: 0, or the exit status of a usage error */
static int take_opt(int c, const char *arg, struct run_opts *o)
{
	char *end;
	long v;
	switch (c) {
	case 'd': o->detach = 1; break;
	case 'i': o->interactive = 1; break;
	case 't': o->tty = 1; break;
	case 'K': {
		char keys[CLI_DETACH_MAX];
		size_t n;
		if (cli_detach_keys_parse(arg, keys, &n) < 0)
			return cli_usage_error("run", "invalid --detach-keys '%s' (e.g. ctrl-p,ctrl-q)",
					       arg);
		o->detach_keys = arg;
		break;
	}
	case 'n': o->name = arg; break;
	case 'R': o->autorm = 1; break;
	case 'm':
		if (gw_parse_size(arg, 1ULL << 20, &o->mem) < 0 || o->mem < (64ULL << 20) ||
		    o->mem > (1ULL << 40))
			return cli_usage_error("run", "invalid --memory '%s' (at least 64M)", arg);
		break;
	case 'c':
		v = strtol(arg, &end, 10);
		if (*end || v < 1 || v > 64)
			return cli_usage_error("run", "invalid --cpus '%s' (1 to 64)", arg);
		o->cpus = (int)v;
		break;
	case 'e':
		if (!strchr(arg, '=') || arg[0] == '=')
			return cli_usage_error("run", "invalid --env '%s' (want KEY=VALUE)", arg);
		if (o->nuenv >= MAX_ENV)
			return cli_usage_error("run", "too many --env");
		o->uenv[o->nuenv++] = (char *)arg;
		break;
	case 'w':
		if (arg[0] != '/')
			return cli_usage_error("run", "--workdir must be an absolute path");
		o->workdir = arg;
		break;
	case 'u': o->user = arg; break;
	case 'H': o->hostname = arg; break;
	case 'E': o->ep = arg; break;
	case 'M':
		if (!hv_valid_machine(arg))
			return cli_usage_error("run", "invalid machine type '%s' (want "
					       "pc-i440fx-MAJOR.MINOR)", arg);
		o->umachine = arg;
		break;
	case 'N': o->net.network = arg; break;
	case 'I': o->net.ip = arg; break;
	case 'A': o->net.mac = arg; break;
	case 'p':
		if (o->net.npublish >= ARRAY_SIZE(o->net.publish))
			return cli_usage_error("run", "more than %zu -p", ARRAY_SIZE(o->net.publish));
		o->net.publish[o->net.npublish++] = arg;
		break;
	case 'L':
		/* Docker's json-file/local options: max-size=SIZE (k, m, g), max-file=N */
		if (!strncmp(arg, "max-size=", 9)) {
			if (gw_parse_size(arg + 9, 1, &o->log_max_size) < 0 ||
			    o->log_max_size < CT_LOG_MAX_SIZE_MIN || o->log_max_size > (1ULL << 40))
				return cli_usage_error("run", "invalid --log-opt '%s' (max-size from "
						       "4k to 1t)", arg);
		} else if (!strncmp(arg, "max-file=", 9)) {
			v = strtol(arg + 9, &end, 10);
			if (!arg[9] || *end || v < 1 || v > CT_LOG_MAX_FILE_MAX)
				return cli_usage_error("run", "invalid --log-opt '%s' (max-file from 1 "
						       "to %d)", arg, CT_LOG_MAX_FILE_MAX);
			o->log_max_file = (int)v;
		} else {
			return cli_usage_error("run", "unknown --log-opt '%s' (max-size=SIZE or "
					       "max-file=N)", arg);
		}
		break;
	case 'r':
		/* docker's policies; unless-stopped is always here (no daemon to restart) */
		o->restart_max = 0;
		if (!strcmp(arg, "no")) {
			o->restart = CT_RESTART_NO;
		} else if (!strcmp(arg, "always") || !strcmp(arg, "unless-stopped")) {
			o->restart = CT_RESTART_ALWAYS;
		} else if (!strncmp(arg, "on-failure", 10) && (!arg[10] || arg[10] == ':')) {
			o->restart = CT_RESTART_ON_FAILURE;
			v = arg[10] ? strtol(arg + 11, &end, 10) : 0;
			if (arg[10] && (!arg[11] || *end || v < 1 || v > CT_RESTART_MAX_RETRIES))
				return cli_usage_error("run", "invalid --restart '%s' (on-failure:N, N "
						       "from 1 to %d)", arg, CT_RESTART_MAX_RETRIES);
			o->restart_max = (int)v;
		} else {
			return cli_usage_error("run", "invalid --restart '%s' (no, always, "
					       "unless-stopped or on-failure[:N])", arg);
		}
		break;
	case 'v':
		if (o->nvols >= GW_MOUNTS_MAX)
			return cli_usage_error("run", "more than %d volumes", GW_MOUNTS_MAX);
		o->vols[o->nvols++] = (char *)arg;
		break;
	default: return cli_usage_error("run", "invalid option");
	}
	return 0;
}

/* the options, then IMAGE: 0 and *img_at (argv's index of IMAGE), 1 when --help was
 * answered, else the exit status of a usage error */
static int parse_opts(int argc, char **argv, struct run_opts *o, int *img_at)
{
	static const struct option opts[] = {
		{ "detach", no_argument, NULL, 'd' },	{ "name", required_argument, NULL, 'n' },
		{ "rm", no_argument, NULL, 'R' },	{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' }, { "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' }, { "user", required_argument, NULL, 'u' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "entrypoint", required_argument, NULL, 'E' },
		{ "machine", required_argument, NULL, 'M' },
		{ "network", required_argument, NULL, 'N' }, { "ip", required_argument, NULL, 'I' },
		{ "mac", required_argument, NULL, 'A' }, { "publish", required_argument, NULL, 'p' },
		{ "volume", required_argument, NULL, 'v' },
		{ "log-opt", required_argument, NULL, 'L' },
		{ "restart", required_argument, NULL, 'r' },
		{ "interactive", no_argument, NULL, 'i' }, { "tty", no_argument, NULL, 't' },
		{ "detach-keys", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },	{ 0 },
	};
	int c, r;
	while ((c = getopt_long(argc, argv, "+ditn:m:e:w:u:p:v:h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if ((r = take_opt(c, optarg, o)) != 0)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error("run", "missing IMAGE");
	/* as docker: a terminal says what it is, unless -e says otherwise */
	if (o->tty) {
		if (o->nuenv >= MAX_ENV)
			return cli_usage_error("run", "too many --env");
		memmove(o->uenv + 1, o->uenv, o->nuenv++ * sizeof(o->uenv[0]));
		o->uenv[0] = (char *)"TERM=xterm";
	}
	if (o->autorm && o->restart)
		return cli_usage_error("run", "--restart and --rm conflict (as in docker)");
	if (o->name && !gw_valid_name(o->name))
		return cli_usage_error("run", "invalid name '%s' ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at "
				       "most 64)", o->name);
	struct gw_err err = { 0 };
	struct gw_mount m[GW_MOUNTS_MAX];
	int nm;
	if (run_net_check(&o->net, &err) < 0 || gw_mounts_parse(o->vols, m, &nm, &err) < 0)
		return cli_usage_error("run", "%s", err.msg);
	*img_at = optind;
	return 0;
}

/* everything of the config that is not the command: from the options and the image */
static int fill_config(const struct gw_cli *cli, const struct run_opts *o, const char *ref,
		       const struct gw_image *img, struct ct_config *cfg, struct gw_err *err)
{
	int r = cli_vm_basics(cli, o->umachine, cfg, err);
	if (r < 0)
		return r;
	snprintf(cfg->name, sizeof(cfg->name), "%s", o->name);
	snprintf(cfg->image, sizeof(cfg->image), "%s", ref);
	snprintf(cfg->image_id, sizeof(cfg->image_id), "%s", img->id);
	cfg->cwd = strdup(o->workdir ? o->workdir : img->workdir && *img->workdir ? img->workdir : "/");
	cfg->user = o->user ? strdup(o->user) : img->user && *img->user ? strdup(img->user) : NULL;
	cfg->hostname = strdup(o->hostname ? o->hostname : o->name);
	cfg->mem_bytes = o->mem;
	cfg->cpus = o->cpus;
	cfg->auto_remove = o->autorm;
	cfg->tty = o->tty;
	cfg->open_stdin = o->interactive;
	cfg->log_max_size = o->log_max_size;
	cfg->log_max_file = o->log_max_file;
	cfg->restart = o->restart;
	cfg->restart_max = o->restart_max;
	cfg->created_ns = gw_now_real_ns();
	return 0;
}

/* -v: each volume made if missing (made[i] set), refused if another container mounts it
 * (one VM at a time may open its disk); cfg->volumes gets the canonical specs */
static int attach_volumes(const struct gw_cli *cli, const struct run_opts *o,
			  struct ct_config *cfg, int made[GW_MOUNTS_MAX], struct gw_err *err)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	int n, r = gw_mounts_parse(o->vols, m, &n, err);
	if (r < 0 || n == 0)
		return r;
	if (!(cfg->volumes = calloc((size_t)n + 1, sizeof(char *))))
		return gw_err_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		char user[65], spec[GW_MOUNT_TARGET_MAX + 80];
		uint64_t size;
		if ((r = gw_volume_user(cli->root, m[i].name, o->name, user, err)) < 0)
			return r;
		if (r == 1)
			return gw_err_set(err, EBUSY, "volume %s is used by container %s (a volume "
					  "is one disk: one container at a time)", m[i].name, user);
		r = gw_volume_size(cli->root, m[i].name, &size, err);
		if (r == -ENOENT) {
			*err = (struct gw_err){ 0 };
			r = gw_volume_create(cli->root, m[i].name, GW_VOLUME_SIZE_DEFAULT, 0, err);
			made[i] = r == 0;
		}
		if (r < 0)
			return r;
		gw_mount_format(&m[i], spec, sizeof(spec));
		if (!(cfg->volumes[i] = strdup(spec)))
			return gw_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* The record (creating its directory claims the name), the disk, the volumes, the network,
 * the shim; on failure nothing is left. */
static int create(struct gw_cli *cli, const struct run_opts *o, struct ct_config *cfg,
		  const struct gw_image *img, struct gw_err *err)
{
	cleanup_free char *cdir = gw_strdup_printf("%s/containers", cli->root);
	cleanup_free char *dir = ct_dir(cli->root, o->name);
	cleanup_free char *disk = ct_path(cli->root, o->name, "disk.qcow2");
	int r = gw_mkdir_p(cdir, 0700, err);
	if (r == 0 && mkdir(dir, 0700) < 0)
		return errno == EEXIST ? gw_err_set(err, EEXIST, "the name \"%s\" is already in "
						    "use by a container", o->name)
				       : gw_err_sys(err, errno, "mkdir %s", dir);
	if (r == 0) {
		char *qargv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
				  img->base_disk, disk, NULL };
		if ((r = gw_run(qargv, err)) < 0)
			gw_err_prefix(err, "create the container's disk");
	}
	int made[GW_MOUNTS_MAX] = { 0 };
	if (r == 0)
		r = attach_volumes(cli, o, cfg, made, err);
	if (r == 0)
		r = run_net_attach(cli, &o->net, cfg, err);
	if (r == 0)
		r = ct_config_save(cli->root, cfg, err);
	if (r == 0)
		r = cli_spawn_shim(cli, o->name, NULL, err);
	if (r < 0) {
		run_net_detach(cli, o->name, cfg->network);
		gw_rm_rf(dir, NULL);
		for (size_t i = 0; i < o->nvols; i++) {
			struct gw_mount m;
			struct gw_err ignored = { 0 };
			if (made[i] && gw_mount_parse(o->vols[i], &m, &ignored) == 0)
				gw_volume_remove(cli->root, m.name, &ignored);
		}
	}
	return r;
}

/* foreground: attach (replaying what was already logged), then wait for the exit */
static int attach(struct gw_cli *cli, const struct run_opts *o)
{
	struct cli_session_opts so = { .in_fd = o->interactive ? 0 : -1, .tty = o->tty };
	cli_detach_keys_parse(o->detach_keys ? o->detach_keys : CLI_DETACH_DEFAULT, so.detach,
			      &so.ndetach);
	/* a container that restarts runs on after its process: do not wait for it */
	return cli_attach_session(cli, "run", o->name, &so, 1, o->restart == CT_RESTART_NO);
}

int cmd_run(struct gw_cli *cli, int argc, char **argv)
{
	struct run_opts o = { .cpus = 1, .mem = 512ULL << 20 };
	int at = 0, r = parse_opts(argc, argv, &o, &at);
	if (r)
		return r == 1 ? 0 : r;
	char genname[32];
	if (!o.name) {
		random_name(genname, sizeof(genname));
		o.name = genname;
	}
	struct gw_err err = { 0 };
	struct gw_image img = { 0 };
	if (gw_image_resolve(cli->root, argv[at], &img, &err) < 0)
		return cli_fail("run", &err);
	struct ct_config cfg = { 0 };
	r = make_config(&cfg, &img, argv + at + 1, argc - at - 1, o.ep, o.uenv, o.nuenv, &err);
	if (r == 0)
		r = fill_config(cli, &o, argv[at], &img, &cfg, &err);
	if (r == 0)
		r = create(cli, &o, &cfg, &img, &err);
	gw_image_free(&img);
	ct_config_free(&cfg);
	if (r < 0)
		return cli_fail("run", &err);
	if (o.detach) {
		printf("%s\n", o.name);
		return 0;
	}
	return attach(cli, &o);
}
