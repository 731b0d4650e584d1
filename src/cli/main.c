/* godwit's entry point: global options, then dispatch to one cmd_<name>.c per command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "godwit/util.h"
#include "godwit/knobs.h"
#include "godwit/shim_main.h"
#include "godwit/version.h"

int cmd_shim(struct gw_cli *cli, int argc, char **argv)
{
	struct shim_opts o = { .root = cli->root, .accel = cli->accel, .kernel = cli->kernel,
			       .initrd = cli->initrd };
	return shim_main(&o, argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(struct gw_cli *, int, char **);
	const char *help;
} commands[] = {
#define X(n, h) { #n, cmd_##n, h },
	GW_COMMANDS(X)
#undef X
	{ "__shim", cmd_shim, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
		   "Run containers in their own QEMU virtual machines and live-migrate them.\n\n"
		   "Global options:\n"
		   "      --root DIR      state directory (env GODWIT_ROOT; default /var/lib/godwit)\n"
		   "      --accel MODE    auto|kvm|tcg (default auto: KVM only where it can run the\n"
		   "                      guest)\n"
		   "      --kernel FILE   guest kernel (default: the guest kit's)\n"
		   "      --initrd FILE   guest initramfs with godwit-agent (default: the guest kit's)\n"
		   "  -h, --help          this help\n"
		   "      --version       print godwit's version\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'godwit COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	gw_knobs_load();
	struct gw_cli cli = {
		.root = getenv("GODWIT_ROOT") && *getenv("GODWIT_ROOT") ? getenv("GODWIT_ROOT")
									  : "/var/lib/godwit",
		.accel = "auto",
		.argv0 = argv[0],
	};
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "accel", required_argument, NULL, 'a' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;
	/* "+" stops at the first non-option: the command and its own flags follow. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': cli.root = optarg; break;
		case 'a':
			if (strcmp(optarg, "auto") && strcmp(optarg, "kvm") && strcmp(optarg, "tcg")) {
				fprintf(stderr, "godwit: --accel must be auto, kvm or tcg, not '%s'\n",
					optarg);
				return GW_EXIT_ERROR;
			}
			cli.accel = optarg;
			break;
		case 'k': cli.kernel = optarg; break;
		case 'i': cli.initrd = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("godwit %s\n", GODWIT_VERSION); return 0;
		default: usage(stderr); return GW_EXIT_ERROR;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return GW_EXIT_ERROR;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name))
			continue;
		int idx = optind, help = 0;
		for (int i = idx + 1; i < argc; i++)
			help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
		struct gw_err err = { 0 };
		if (!help && gw_root_prepare(cli.root, &err) < 0) {
			fprintf(stderr, "godwit: %s\n", err.msg);
			return GW_EXIT_ERROR;
		}
		optind = 0; /* let the command's getopt_long start afresh (GNU: full reset) */
		return commands[i].fn(&cli, argc - idx, argv + idx);
	}
	fprintf(stderr, "godwit: unknown command '%s'\nSee 'godwit --help'.\n", name);
	return GW_EXIT_ERROR;
}
