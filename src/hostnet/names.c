/* The names godwit gives on the host: network names (checked, since they become file and
 * chain names), bridge names and tap names (a hash, since a Linux interface name has at most
 * 15 characters), and a NAT network's bridge MAC (a hash too: the same on every host). */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "hostnet_int.h"

int hn_valid_name(const char *name)
{
	size_t n = strnlen(name, GW_NET_NAME_MAX);
	if (n == 0 || n >= GW_NET_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") == 0)
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* SHA-256(a b) into md */
static void sha256_ab(const char *a, const char *b, unsigned char md[EVP_MAX_MD_SIZE])
{
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, a, strlen(a)) && EVP_DigestUpdate(ctx, b, strlen(b)) &&
		 EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok) /* only when OpenSSL is out of memory: the creation that follows fails too */
		memset(md, 0, EVP_MAX_MD_SIZE);
}

/* prefix + the first nhex hex digits of SHA-256(a b) */
static void hashed_name(const char *prefix, const char *a, const char *b, size_t nhex,
			char out[GW_IFNAME_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	sha256_ab(a, b, md);
	size_t n = strlen(prefix);
	memcpy(out, prefix, n);
	for (size_t i = 0; i < nhex / 2 && n + 2 < GW_IFNAME_MAX; i++, n += 2)
		snprintf(out + n, 3, "%02x", md[i]);
	out[n] = '\0';
}

void hn_bridge_name(const char *name, char out[GW_IFNAME_MAX])
{
	hashed_name("gw-", name, "", 8, out);
}

void gw_tap_name(const char *root, const char *ct, char out[GW_IFNAME_MAX])
{
	char sep_ct[256];
	snprintf(sep_ct, sizeof(sep_ct), "/%s", ct);
	hashed_name("gwt", root, sep_ct, 12, out);
}

void hn_bridge_mac(const struct gw_network *n, unsigned char mac[6])
{
	char cidr[GW_CIDR_MAX], gw[16], what[64];
	unsigned char md[EVP_MAX_MD_SIZE];
	snprintf(what, sizeof(what), "/%s/%s", gw_fmt_cidr(n->subnet, n->prefix, cidr),
		 gw_fmt_ipv4(n->gateway, gw));
	sha256_ab(n->name, what, md);
	mac[0] = 0x02; /* locally administered, unicast */
	memcpy(mac + 1, md, 5);
}
