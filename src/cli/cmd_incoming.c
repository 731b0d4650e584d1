/* godwit incoming: start a destination shim that listens for one migrating container; returns
 * once it listens. The container shows in `ps` as incoming until the move completes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/hv.h"
#include "godwit/net.h"
#include "godwit/util.h"

int cmd_incoming(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' }, { "listen", required_argument, NULL, 'l' },
		{ "tls-dir", required_argument, NULL, 't' }, { "insecure", no_argument, NULL, 'I' },
		{ "memory-max", required_argument, NULL, 'm' }, { "cpus-max", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *name = NULL, *listen = NULL, *tls_flag = NULL;
	int c, insecure = 0;
	uint64_t max_mem = 0;
	long max_cpus = 0;
	while ((c = getopt_long(argc, argv, "n:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'l': listen = optarg; break;
		case 't': tls_flag = optarg; break;
		case 'I': insecure = 1; break;
		case 'm':
		case 'c':
			if ((c = cli_limit_opt("incoming", c, optarg, &max_mem, &max_cpus)) != 0)
				return c;
			break;
		case 'h':
			printf("Usage: godwit incoming --name NAME --listen tcp:ADDR:PORT [--tls-dir DIR |\n"
			       "                       --insecure] [--memory-max SIZE] [--cpus-max N]\n\n"
			       "Wait for a container migrated from another host. The source sends the\n"
			       "container's config; this host checks it can honour it (image by id,\n"
			       "disk space) before any state moves. Until the move ends, `ps` lists\n"
			       "it as incoming; `rm -f NAME` gives up (before the move commits, the\n"
			       "source runs on). Without TLS it listens only on a loopback address.\n\n"
			       "  -n, --name NAME             the container's name on this host\n"
			       "  -l, --listen tcp:ADDR:PORT  where to wait for the source\n"
			       "      --tls-dir DIR           the move inside mutual TLS, DIR in QEMU's\n"
			       "                              x509 layout (default $GODWIT_TLS_DIR;\n"
			       "                              docs/security.md)\n"
			       "      --memory-max SIZE       refuse a container that wants more memory\n"
			       "                              (default: this host's; a bare number is\n"
			       "                              MiB)\n"
			       "      --cpus-max N            refuse one that wants more CPUs (default:\n"
			       "                              this host's)\n"
			       "      --insecure              listen on ADDR without TLS even when it\n"
			       "                              is not loopback: whoever connects first\n"
			       "                              sends the container, and the link carries\n"
			       "                              its memory and disk in the clear\n"
			       "  -h, --help                  this help\n");
			return 0;
		default: return cli_usage_error("incoming", "invalid option");
		}
	}
	if (optind != argc)
		return cli_usage_error("incoming", "unexpected argument '%s'", argv[optind]);
	if (!name || !listen)
		return cli_usage_error("incoming", "want --name and --listen");
	if (!gw_valid_name(name))
		return cli_usage_error("incoming", "invalid name '%s'", name);
	struct gw_err err = { 0 };
	char host[256], port[16];
	if (net_parse_tcp(listen, host, port, &err) < 0)
		return cli_fail("incoming", &err);
	cleanup_free char *tls_dir = NULL;
	if (cli_tls_dir(tls_flag, 1, &tls_dir, &err) < 0)
		return cli_fail("incoming", &err);
	if (tls_dir && insecure)
		return cli_usage_error("incoming", "--insecure and --tls-dir exclude each other");
	if (!tls_dir && !insecure && !cli_is_loopback(host))
		return cli_fail("incoming", &(struct gw_err){ EACCES,
			"refusing to listen on a non-loopback address without TLS: whoever connects "
			"first would send the container, and the link would carry its memory and "
			"disk in the clear; give --tls-dir DIR (docs/security.md), or --insecure on "
			"a network you trust" });
	enum hv_accel accel;
	char reason[256];
	if (hv_choose_accel(cli->accel, &accel, reason, sizeof(reason), &err) < 0)
		return cli_fail("incoming", &err);
	char *kernel, *initrd;
	if (cli_kit_paths(cli, &kernel, &initrd, &err) < 0)
		return cli_fail("incoming", &err);
	cli->kernel = kernel;
	cli->initrd = initrd;
	cli->accel = hv_accel_name(accel);
	cleanup_free char *cdir = gw_strdup_printf("%s/containers", cli->root);
	cleanup_free char *dir = ct_dir(cli->root, name);
	int r = gw_mkdir_p(cdir, 0700, &err);
	struct ct_status old;
	/* a container that once left this host (`migrated`) may come back under its name: its
	 * record is only a tombstone */
	if (r == 0 && ct_status_load(cli->root, name, &old, NULL) == 0 && old.state == CT_MIGRATED)
		r = gw_rm_rf(dir, &err);
	if (r == 0 && mkdir(dir, 0700) < 0)
		r = errno == EEXIST ? gw_err_set(&err, EEXIST, "the name \"%s\" is already in use",
						 name)
				    : gw_err_sys(&err, errno, "mkdir %s", dir);
	else if (r == 0) {
		char mm[32], mc[16];
		snprintf(mm, sizeof(mm), "%llu", (unsigned long long)max_mem);
		snprintf(mc, sizeof(mc), "%ld", max_cpus);
		char *extra[9] = { "--incoming", (char *)listen };
		int k = 2;
		if (max_mem)
			extra[k++] = "--memory-max", extra[k++] = mm;
		if (max_cpus)
			extra[k++] = "--cpus-max", extra[k++] = mc;
		if (tls_dir)
			extra[k++] = "--tls-dir", extra[k++] = tls_dir;
		r = cli_spawn_shim(cli, name, extra, &err);
		if (r < 0)
			gw_rm_rf(dir, NULL);
	}
	free(kernel);
	free(initrd);
	if (r < 0)
		return cli_fail("incoming", &err);
	printf("%s\n", name);
	return 0;
}
