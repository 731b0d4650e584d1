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
#include "godwit/proc.h"
#include "godwit/util.h"

#define MAX_ENV 1024
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
		   "Run a command in a new container VM.\n\n"
		   "Options:\n"
		   "  -d, --detach          run in the background and print the container's name\n"
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
		   "                        create); \"none\" (the default): no network\n"
		   "      --ip IP           its address there (default: the next free one)\n"
		   "      --mac MAC         its MAC address (default: 52:54:00 and 3 random bytes)\n"
		   "  -p, --publish [HOSTIP:]HOSTPORT:PORT[/tcp|udp]\n"
		   "                        the host's port (every address, 127.0.0.1 too, or\n"
		   "                        HOSTIP) reaches the container's PORT; ranges\n"
		   "                        8080-8081:80-81; repeatable; needs --network\n"
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

int cmd_run(struct gw_cli *cli, int argc, char **argv)
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
		{ "help", no_argument, NULL, 'h' },	{ 0 },
	};
	int detach = 0, autorm = 0, cpus = 1, c;
	const char *name = NULL, *workdir = NULL, *user = NULL, *hostname = NULL, *ep = NULL;
	const char *umachine = NULL;
	struct run_net net = { 0 };
	uint64_t mem = 512ULL << 20;
	char *uenv[MAX_ENV];
	size_t nuenv = 0;
	while ((c = getopt_long(argc, argv, "+dn:m:e:w:u:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': detach = 1; break;
		case 'n': name = optarg; break;
		case 'R': autorm = 1; break;
		case 'm':
			if (gw_parse_size(optarg, 1ULL << 20, &mem) < 0 || mem < (64ULL << 20) ||
			    mem > (1ULL << 40))
				return cli_usage_error("run", "invalid --memory '%s' (at least 64M)",
						       optarg);
			break;
		case 'c': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 64)
				return cli_usage_error("run", "invalid --cpus '%s' (1 to 64)", optarg);
			cpus = (int)v;
			break;
		}
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				return cli_usage_error("run", "invalid --env '%s' (want KEY=VALUE)",
						       optarg);
			if (nuenv >= MAX_ENV)
				return cli_usage_error("run", "too many --env");
			uenv[nuenv++] = optarg;
			break;
		case 'w':
			if (optarg[0] != '/')
				return cli_usage_error("run", "--workdir must be an absolute path");
			workdir = optarg;
			break;
		case 'u': user = optarg; break;
		case 'H': hostname = optarg; break;
		case 'E': ep = optarg; break;
		case 'M':
			if (!hv_valid_machine(optarg))
				return cli_usage_error("run", "invalid machine type '%s' (want "
						       "pc-i440fx-MAJOR.MINOR)", optarg);
			umachine = optarg;
			break;
		case 'N': net.network = optarg; break;
		case 'I': net.ip = optarg; break;
		case 'A': net.mac = optarg; break;
		case 'p':
			if (net.npublish >= ARRAY_SIZE(net.publish))
				return cli_usage_error("run", "more than %zu -p",
						       ARRAY_SIZE(net.publish));
			net.publish[net.npublish++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: return cli_usage_error("run", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("run", "missing IMAGE");
	const char *ref = argv[optind];
	char genname[32];
	if (!name) {
		random_name(genname, sizeof(genname));
		name = genname;
	}
	if (!gw_valid_name(name))
		return cli_usage_error("run", "invalid name '%s' ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at "
				       "most 64)", name);

	struct gw_err err = { 0 };
	if (run_net_check(&net, &err) < 0)
		return cli_usage_error("run", "%s", err.msg);
	enum hv_accel accel;
	char reason[256];
	if (hv_choose_accel(cli->accel, &accel, reason, sizeof(reason), &err) < 0)
		return cli_fail("run", &err);
	/* the machine type of this QEMU, kept by the container for good (moves to newer QEMUs) */
	char qv[64], machine[HV_MACHINE_MAX];
	int vr = umachine ? 0 : hv_qemu_version(qv, sizeof(qv));
	if (umachine)
		snprintf(machine, sizeof(machine), "%s", umachine);
	else if (vr < 0 || hv_machine_for_version(qv, machine, sizeof(machine)) < 0) {
		gw_err_set(&err, vr < 0 ? -vr : EINVAL, "cannot tell the version of %s (%s)",
			   hv_qemu_binary(), vr < 0 ? strerror(-vr) : qv);
		return cli_fail("run", &err);
	}
	struct gw_image img = { 0 };
	if (gw_image_resolve(cli->root, ref, &img, &err) < 0)
		return cli_fail("run", &err);
	struct ct_config cfg = { 0 };
	int r = make_config(&cfg, &img, argv + optind + 1, argc - optind - 1, ep, uenv, nuenv, &err);
	cleanup_free char *kernel = NULL, *initrd = NULL;
	if (r == 0)
		r = cli_kit_paths(cli, &kernel, &initrd, &err);
	if (r < 0) {
		gw_image_free(&img);
		ct_config_free(&cfg);
		return cli_fail("run", &err);
	}
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	snprintf(cfg.image, sizeof(cfg.image), "%s", ref);
	snprintf(cfg.image_id, sizeof(cfg.image_id), "%s", img.id);
	cfg.cwd = strdup(workdir ? workdir : img.workdir && *img.workdir ? img.workdir : "/");
	cfg.user = user ? strdup(user) : img.user && *img.user ? strdup(img.user) : NULL;
	cfg.hostname = strdup(hostname ? hostname : name);
	cfg.mem_bytes = mem;
	cfg.cpus = cpus;
	cfg.auto_remove = autorm;
	snprintf(cfg.accel, sizeof(cfg.accel), "%s", hv_accel_name(accel));
	snprintf(cfg.machine, sizeof(cfg.machine), "%s", machine);
	cfg.kernel = steal_ptr(kernel);
	cfg.initrd = steal_ptr(initrd);
	cfg.created_ns = gw_now_real_ns();

	/* the record: creating its directory claims the name */
	cleanup_free char *cdir = gw_strdup_printf("%s/containers", cli->root);
	cleanup_free char *dir = ct_dir(cli->root, name);
	cleanup_free char *disk = ct_path(cli->root, name, "disk.qcow2");
	r = gw_mkdir_p(cdir, 0700, &err);
	if (r == 0 && mkdir(dir, 0700) < 0) {
		r = errno == EEXIST ? gw_err_set(&err, EEXIST, "the name \"%s\" is already in use "
						 "by a container", name)
				    : gw_err_sys(&err, errno, "mkdir %s", dir);
		gw_image_free(&img);
		ct_config_free(&cfg);
		return cli_fail("run", &err);
	}
	if (r == 0) {
		char *qargv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
				  img.base_disk, disk, NULL };
		r = gw_run(qargv, &err);
		if (r < 0)
			gw_err_prefix(&err, "create the container's disk");
	}
	gw_image_free(&img);
	if (r == 0)
		r = run_net_attach(cli, &net, &cfg, &err);
	if (r == 0)
		r = ct_config_save(cli->root, &cfg, &err);
	if (r == 0)
		r = cli_spawn_shim(cli, name, NULL, &err);
	if (r < 0)
		run_net_detach(cli, name, cfg.network);
	ct_config_free(&cfg);
	if (r < 0) {
		gw_rm_rf(dir, NULL);
		return cli_fail("run", &err);
	}
	if (detach) {
		printf("%s\n", name);
		return 0;
	}

	/* foreground: attach (replaying what was already logged), then wait for the exit */
	int fd = cli_connect(cli, name, &err);
	if (fd < 0)
		return cli_fail("run", &err);
	struct ctl_reader rd = { 0 };
	json_object *args = json_object_new_object();
	json_object_object_add(args, "logs", json_object_new_boolean(1));
	r = ctl_call(fd, &rd, "attach", args, NULL, NULL, NULL, 10000, &err);
	json_object_put(args);
	int status = -1;
	if (r == 0)
		r = cli_stream_events(fd, &rd, &status, &err);
	if (r == 0 && autorm)
		cli_wait_closed(fd, 60000);
	ctl_reader_free(&rd);
	close(fd);
	if (r < 0)
		return cli_fail("run", &err);
	if (status < 0) {
		fprintf(stderr, "godwit run: the container's VM stopped without an exit status\n");
		return GW_EXIT_ERROR;
	}
	return status;
}
