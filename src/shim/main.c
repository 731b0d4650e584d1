/* godwit-shim: the shim as its own small program, so that a long-lived shim per container
 * maps only what it uses (no libarchive and its dependencies, which only `load` needs). The
 * CLI starts it as `godwit-shim --root R [--accel A] [--kernel K] [--initrd I] __shim ...`. */
#include <stdio.h>
#include <string.h>

#include "godwit/err.h"
#include "godwit/knobs.h"
#include "godwit/shim_main.h"

int main(int argc, char **argv)
{
	gw_knobs_load();
	struct shim_opts cli = { .root = "/var/lib/godwit", .accel = "auto" };
	int i = 1;
	for (; i + 1 < argc && strcmp(argv[i], "__shim"); i += 2) {
		if (!strcmp(argv[i], "--root"))
			cli.root = argv[i + 1];
		else if (!strcmp(argv[i], "--accel"))
			cli.accel = argv[i + 1];
		else if (!strcmp(argv[i], "--kernel"))
			cli.kernel = argv[i + 1];
		else if (!strcmp(argv[i], "--initrd"))
			cli.initrd = argv[i + 1];
		else
			break;
	}
	if (i >= argc || strcmp(argv[i], "__shim")) {
		fprintf(stderr, "godwit-shim: started by godwit only (want ... __shim NAME)\n");
		return GW_EXIT_ERROR;
	}
	return shim_main(&cli, argc - i, argv + i);
}
