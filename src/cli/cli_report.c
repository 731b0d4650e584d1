/* How the CLI's commands report: an error printed once as "godwit CMD: message", a usage
 * error with a pointer to --help, and a command over several containers (cli.h). */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"
#include "godwit/util.h"

int cli_fail(const char *cmd, const struct gw_err *err)
{
	/* the message may carry a peer's words (a destination's refusal): escaped */
	char msg[4 * GW_ERR_MSG_MAX + 1];
	gw_escape_ctl(err->msg[0] ? err->msg : "failed", msg, sizeof(msg));
	fprintf(stderr, "godwit %s: %s\n", cmd, msg);
	return GW_EXIT_ERROR;
}

int cli_for_each(struct gw_cli *cli, const char *cmd, int n, char **names, int arg,
		 int (*fn)(struct gw_cli *cli, const char *name, int arg, struct gw_err *err))
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		struct gw_err err = { 0 };
		if (fn(cli, names[i], arg, &err) < 0)
			rc = cli_fail(cmd, &err);
		else
			printf("%s\n", names[i]);
	}
	return rc;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "godwit %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nSee 'godwit %s --help'.\n", cmd);
	return GW_EXIT_ERROR;
}
