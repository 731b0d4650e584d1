/* IPv4 addresses and subnets as text and as numbers (host byte order): the parsers refuse
 * anything but a plain dotted quad and a network address with its prefix, since their input
 * comes from users and from records on disk. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "hostnet_int.h"

uint32_t hn_mask(int prefix)
{
	return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
}

uint32_t hn_broadcast(uint32_t subnet, int prefix)
{
	return subnet | ~hn_mask(prefix);
}

int hn_contains(uint32_t subnet, int prefix, uint32_t addr)
{
	return (addr & hn_mask(prefix)) == subnet;
}

int hn_overlaps(uint32_t a, int pa, uint32_t b, int pb)
{
	uint32_t m = hn_mask(pa < pb ? pa : pb); /* the larger of the two decides */
	return (a & m) == (b & m);
}

int gw_parse_ipv4(const char *s, uint32_t *addr, struct gw_err *err)
{
	struct in_addr in;
	if (strnlen(s, 16) > 15 || inet_pton(AF_INET, s, &in) != 1)
		return gw_err_set(err, EINVAL, "bad IPv4 address \"%.40s\" (expected a.b.c.d)", s);
	*addr = ntohl(in.s_addr);
	return 0;
}

const char *gw_fmt_ipv4(uint32_t addr, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
		 addr & 0xff);
	return buf;
}

const char *gw_fmt_cidr(uint32_t addr, int prefix, char buf[GW_CIDR_MAX])
{
	char a[16];
	snprintf(buf, GW_CIDR_MAX, "%s/%d", gw_fmt_ipv4(addr, a), prefix);
	return buf;
}

static int parse_prefix(const char *s, int *prefix)
{
	size_t n = strlen(s);
	if (n < 1 || n > 2 || strspn(s, "0123456789") != n || (n == 2 && s[0] == '0'))
		return -1;
	*prefix = s[0] - '0';
	if (n == 2)
		*prefix = *prefix * 10 + s[1] - '0';
	return *prefix <= 32 ? 0 : -1;
}

int gw_parse_cidr(const char *s, uint32_t *addr, int *prefix, struct gw_err *err)
{
	char ip[16], net[GW_CIDR_MAX];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(ip) || parse_prefix(slash + 1, prefix) < 0)
		return gw_err_set(err, EINVAL,
				  "bad subnet \"%.40s\" (expected a.b.c.d/N, N from 0 to 32)", s);
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (gw_parse_ipv4(ip, addr, NULL) < 0)
		return gw_err_set(err, EINVAL, "bad subnet \"%.40s\": \"%s\" is no IPv4 address", s,
				  ip);
	if (*addr & ~hn_mask(*prefix))
		return gw_err_set(err, EINVAL, "bad subnet \"%s\": not a network address (%s is)", s,
				  gw_fmt_cidr(*addr & hn_mask(*prefix), *prefix, net));
	return 0;
}
