/* A signal named on a command line (kill -s, godwit-runtime kill): a number 1-64, or a name
 * with or without "SIG", in any case. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int cli_parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n >= 1 && n <= 64 ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < 32; i++) {
		const char *name = sigabbrev_np(i);
		if (name && !strcasecmp(s, name))
			return i;
	}
	return -1;
}
