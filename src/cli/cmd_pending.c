/* Commands of the migration work that are not built yet: each says so plainly. */
#include <stdio.h>

#include "cli.h"

#define PENDING(name)                                                                  \
	int cmd_##name(struct gw_cli *cli, int argc, char **argv)                       \
	{                                                                              \
		(void)cli, (void)argc, (void)argv;                                     \
		fprintf(stderr, "godwit " #name ": not implemented yet\n");            \
		return GW_EXIT_ERROR;                                                  \
	}
PENDING(snapshot)
PENDING(restore)
