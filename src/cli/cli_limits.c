/* --memory-max SIZE and --cpus-max N (incoming, restore): how big a container this host takes
 * from a peer or a snapshot file (docs/security.md, "Limits a peer cannot pass"); and stop's
 * and restart's --time. */
#include <stdlib.h>

#include "cli.h"
#include "godwit/util.h"

int cli_limit_opt(const char *cmd, int c, const char *arg, uint64_t *max_mem, long *max_cpus)
{
	char *end;
	if (c == 'm') {
		if (gw_parse_size(arg, 1ULL << 20, max_mem) < 0 || *max_mem < (16ULL << 20))
			return cli_usage_error(cmd, "invalid --memory-max '%s'", arg);
		return 0;
	}
	*max_cpus = strtol(arg, &end, 10);
	if (*end || *max_cpus < 1 || *max_cpus > 255)
		return cli_usage_error(cmd, "invalid --cpus-max '%s'", arg);
	return 0;
}

int cli_time_opt(const char *cmd, const char *arg, int *seconds)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!*arg || *end || v < 0 || v > 3600)
		return cli_usage_error(cmd, "invalid --time '%s'", arg);
	*seconds = (int)v;
	return 0;
}
