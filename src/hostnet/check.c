/* What a network and its leases must be, checked the same way when a user asks for a network
 * or an address and when a record is read back from disk. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "godwit/util.h"
#include "hostnet_int.h"

int hn_bad_name(const char *name, struct gw_err *err)
{
	return gw_err_set(err, EINVAL,
			  "bad network name \"%.40s\" (expected [a-z0-9][a-z0-9_.-]*, at most %d "
			  "characters)",
			  name, GW_NET_NAME_MAX - 1);
}

int hn_addr_check(const struct gw_network *n, uint32_t addr, const char *what,
		  struct gw_err *err)
{
	char a[16], net[GW_CIDR_MAX];
	gw_fmt_cidr(n->subnet, n->prefix, net);
	gw_fmt_ipv4(addr, a);
	if (!hn_contains(n->subnet, n->prefix, addr))
		return gw_err_set(err, EINVAL, "%s %s is outside network %s's subnet %s", what, a,
				  n->name, net);
	if (addr == n->subnet || addr == hn_broadcast(n->subnet, n->prefix))
		return gw_err_set(err, EINVAL, "%s %s is the %s address of network %s's subnet %s",
				  what, a, addr == n->subnet ? "network" : "broadcast", n->name, net);
	return 0;
}

int hn_network_check(const struct gw_network *n, struct gw_err *err)
{
	char net[GW_CIDR_MAX];
	if (!hn_valid_name(n->name))
		return hn_bad_name(n->name, err);
	gw_fmt_cidr(n->subnet, n->prefix, net);
	if (n->prefix < 8 || n->prefix > 30)
		return gw_err_set(err, EINVAL, "subnet %s: the prefix must be from /8 to /30", net);
	if (n->subnet & ~hn_mask(n->prefix))
		return gw_err_set(err, EINVAL, "subnet %s: not a network address", net);
	if (n->uplink[0] && !gw_valid_ifname(n->uplink))
		return gw_err_set(err, EINVAL, "uplink \"%.20s\": not an interface name", n->uplink);
	if (n->uplink[0] && (!strncmp(n->uplink, "gw-", 3) || !strncmp(n->uplink, "gwt", 3)))
		return gw_err_set(err, EINVAL, "uplink %s: that is one of godwit's own bridges or "
				  "taps", n->uplink);
	if (n->uplink[0] && n->nat)
		return gw_err_set(err, EINVAL, "network %s has uplink %s: its segment's router "
				  "routes it, the host does no NAT", n->name, n->uplink);
	return hn_addr_check(n, n->gateway, "gateway", err);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* no address twice (sorted, so that a large forged record costs n log n) */
static int distinct(const struct gw_network *n, uint32_t *ips, size_t len, struct gw_err *err)
{
	char a[16];
	qsort(ips, len, sizeof(*ips), cmp_u32);
	for (size_t i = 1; i < len; i++)
		if (ips[i] == ips[i - 1])
			return gw_err_set(err, EINVAL, "address %s is leased twice on network %s",
					  gw_fmt_ipv4(ips[i], a), n->name);
	return 0;
}

int hn_lease_addrs(const struct gw_network *n, json_object *leases, uint32_t **out,
		   size_t *len, struct gw_err *err)
{
	if (!json_object_is_type(leases, json_type_object))
		return gw_err_set(err, EINVAL, "\"leases\" must be an object");
	size_t i = 0;
	*len = (size_t)json_object_object_length(leases);
	cleanup_free uint32_t *ips = calloc(*len + 1, sizeof(*ips));
	if (!ips)
		return gw_err_set(err, ENOMEM, "out of memory");
	json_object_object_foreach(leases, ct, v)
	{
		if (!gw_valid_name(ct))
			return gw_err_set(err, EINVAL, "lease for a bad container name \"%.70s\"", ct);
		if (!json_object_is_type(v, json_type_string) ||
		    gw_parse_ipv4(json_object_get_string(v), &ips[i], err) < 0)
			return gw_err_set(err, EINVAL, "lease of %s: not an IPv4 address", ct);
		if (hn_addr_check(n, ips[i], "address", err) < 0)
			return gw_err_prefix(err, "lease of %s", ct);
		if (ips[i++] == n->gateway)
			return gw_err_set(err, EINVAL, "lease of %s: the gateway's address", ct);
	}
	int r = distinct(n, ips, *len, err);
	if (r == 0)
		*out = steal_ptr(ips);
	return r;
}

int hn_leases_check(const struct gw_network *n, json_object *leases, struct gw_err *err)
{
	cleanup_free uint32_t *ips = NULL;
	size_t len;
	return hn_lease_addrs(n, leases, &ips, &len, err);
}
