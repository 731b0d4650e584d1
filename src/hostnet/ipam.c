/* Addresses for containers (include/godwit/hostnet.h, IPAM): the leases live in the network's
 * record, and each change reads, decides and writes it under the networks lock, so that two
 * godwit commands never hand out one address twice. */
#include <string.h>

#include "godwit/util.h"
#include "hostnet_int.h"

/* the first free address from the bottom of the subnet (ips: the leased ones, ascending) */
static int next_free(const struct gw_network *n, const uint32_t *ips, size_t len, uint32_t *ip,
		     struct gw_err *err)
{
	uint32_t last = hn_broadcast(n->subnet, n->prefix) - 1;
	size_t i = 0;
	for (uint32_t a = n->subnet + 1; a <= last; a++) {
		while (i < len && ips[i] < a)
			i++;
		if (a != n->gateway && (i == len || ips[i] != a)) {
			*ip = a;
			return 0;
		}
	}
	return gw_err_set(err, ENOSPC, "network %s has no free address (%zu leased)", n->name,
			  len);
}

/* the container that holds ip, NULL when none */
static const char *holder(json_object *leases, uint32_t ip)
{
	char a[16];
	gw_fmt_ipv4(ip, a);
	json_object_object_foreach(leases, ct, v)
		if (gw_json_streq(v, a))
			return ct;
	return NULL;
}

/* the address ip (0: any) for ct: 1 when ct holds one already (in *ip), 0 when *ip is free */
static int pick(const struct gw_network *n, json_object *leases, const char *ct, uint32_t *ip,
		struct gw_err *err)
{
	char a[16];
	json_object *v;
	if (json_object_object_get_ex(leases, ct, &v)) {
		uint32_t held;
		gw_parse_ipv4(json_object_get_string(v), &held, NULL); /* checked on read */
		if (*ip && *ip != held)
			return gw_err_set(err, EEXIST, "container %s already holds %s on network %s",
					  ct, json_object_get_string(v), n->name);
		*ip = held;
		return 1;
	}
	if (!*ip) {
		cleanup_free uint32_t *ips = NULL;
		size_t len;
		int r = hn_lease_addrs(n, leases, &ips, &len, err);
		return r < 0 ? r : next_free(n, ips, len, ip, err);
	}
	int r = hn_addr_check(n, *ip, "address", err);
	if (r < 0)
		return r;
	if (*ip == n->gateway)
		return gw_err_set(err, EINVAL, "address %s is network %s's gateway",
				  gw_fmt_ipv4(*ip, a), n->name);
	const char *other = holder(leases, *ip);
	if (other)
		return gw_err_set(err, EADDRINUSE, "address %s is held by container %s on network %s",
				  gw_fmt_ipv4(*ip, a), other, n->name);
	return 0;
}

int gw_network_lease(const char *root, const char *name, const char *ct, uint32_t *ip,
		     struct gw_err *err)
{
	if (!gw_valid_name(ct))
		return gw_err_set(err, EINVAL, "bad container name \"%.70s\"", ct);
	cleanup_json json_object *leases = NULL;
	struct gw_network n;
	char a[16];
	cleanup_close int lock = hn_record_lock_read(root, name, &n, &leases, err);
	if (lock < 0)
		return lock;
	int r = pick(&n, leases, ct, ip, err);
	if (r != 0)
		return r < 0 ? r : 0;
	json_object_object_add(leases, ct, json_object_new_string(gw_fmt_ipv4(*ip, a)));
	return hn_record_write(root, &n, leases, err);
}

int gw_network_release(const char *root, const char *name, const char *ct, struct gw_err *err)
{
	cleanup_json json_object *leases = NULL;
	struct gw_network n;
	cleanup_close int lock = hn_record_lock_read(root, name, &n, &leases, err);
	if (lock < 0)
		return lock;
	if (!json_object_object_get_ex(leases, ct, NULL))
		return 0;
	json_object_object_del(leases, ct);
	return hn_record_write(root, &n, leases, err);
}

int gw_network_leases(const char *root, const char *name, struct gw_err *err)
{
	cleanup_json json_object *leases = NULL;
	struct gw_network n;
	int r = hn_record_read(root, name, &n, &leases, err);
	return r < 0 ? r : json_object_object_length(leases);
}
