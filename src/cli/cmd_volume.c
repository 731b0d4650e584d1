/* `godwit volume create|ls|rm`: named volumes, disks that outlive containers and move with
 * them (docs/volumes.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "godwit/util.h"
#include "godwit/volume.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit volume create NAME [--size SIZE]\n"
		   "       godwit volume ls\n"
		   "       godwit volume rm NAME [NAME...]\n\n"
		   "Manage named volumes: ext4 disks of their own that a container mounts with\n"
		   "`run -v NAME:/path[:ro]` and that migrate with it (docs/volumes.md).\n\n"
		   "      --size SIZE  (create) the disk's size, 16M to 1T (default 1G)\n"
		   "  -h, --help       this help\n");
}

static int vol_create(struct gw_cli *cli, const char *name, const char *size_arg)
{
	uint64_t size = GW_VOLUME_SIZE_DEFAULT;
	struct gw_err err = { 0 };
	if (size_arg && gw_parse_size(size_arg, 1, &size) < 0)
		return cli_usage_error("volume create", "--size \"%.40s\": want e.g. 512M or 2G",
				       size_arg);
	if (gw_volume_create(cli->root, name, size, 0, &err) < 0)
		return cli_fail("volume create", &err);
	printf("%s\n", name);
	return 0;
}

static int vol_ls(struct gw_cli *cli)
{
	struct gw_volume_info *v;
	size_t n;
	struct gw_err err = { 0 };
	if (gw_volume_list(cli->root, &v, &n, &err) < 0)
		return cli_fail("volume ls", &err);
	printf("%-24s %-10s %s\n", "NAME", "SIZE", "USED BY");
	for (size_t i = 0; i < n; i++) {
		char sz[24];
		unsigned long long mib = (unsigned long long)(v[i].size >> 20);
		snprintf(sz, sizeof(sz), mib % 1024 ? "%lluM" : "%lluG", mib % 1024 ? mib : mib / 1024);
		printf("%-24s %-10s %s\n", v[i].name, sz, v[i].user[0] ? v[i].user : "-");
	}
	free(v);
	return 0;
}

static int rm_one(struct gw_cli *cli, const char *name, int arg, struct gw_err *err)
{
	(void)arg;
	return gw_volume_remove(cli->root, name, err);
}

int cmd_volume(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *size = NULL;
	int c;
	if (argc < 2)
		return cli_usage_error("volume", "want a subcommand: create, ls, rm");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	/* the subcommand is getopt's argv[0]: the flags and operands follow it */
	const char *sub = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c != 's')
			return cli_usage_error("volume", "bad option");
		size = optarg;
	}
	int n = argc - optind;
	char **ops = argv + optind;
	if (size && strcmp(sub, "create"))
		return cli_usage_error("volume", "--size is for volume create");
	if (!strcmp(sub, "create") && n == 1)
		return vol_create(cli, ops[0], size);
	if (!strcmp(sub, "ls") && n == 0)
		return vol_ls(cli);
	if (!strcmp(sub, "rm") && n >= 1)
		return cli_for_each(cli, "volume rm", n, ops, 0, rm_one);
	if (strcmp(sub, "create") && strcmp(sub, "ls") && strcmp(sub, "rm"))
		return cli_usage_error("volume", "unknown subcommand '%s' (create, ls, rm)", sub);
	return cli_usage_error("volume", "volume %s: wrong number of arguments", sub);
}
