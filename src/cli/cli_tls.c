/* The TLS options of `incoming` and `migrate` (docs/security.md): --tls-dir DIR, or
 * GODWIT_TLS_DIR, made absolute (the shim runs elsewhere) and checked for the files the role
 * needs before anything starts; and the rule that an unprotected listener stays on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "godwit/tls.h"

int cli_tls_dir(const char *flag, int server, char **out, struct gw_err *err)
{
	*out = NULL;
	const char *dir = flag ? flag : getenv("GODWIT_TLS_DIR");
	if (!dir || !*dir)
		return 0;
	char *abs = realpath(dir, NULL);
	if (!abs)
		return gw_err_sys(err, errno, "TLS directory %s", dir);
	int r = gw_tls_dir_check(abs, server, err);
	if (r < 0) {
		free(abs);
		return r;
	}
	*out = abs;
	return 0;
}

int cli_is_loopback(const char *host)
{
	unsigned char a[16];
	if (!strcmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, (unsigned char[16]){ [15] = 1 }, 16);
}
