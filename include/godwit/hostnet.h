/* Container networks on this host (docs/network.md): a network is a Linux bridge with a
 * subnet, the host's gateway address on it and (unless --no-nat) masquerading to the host's
 * uplinks; each container on it has a tap on the bridge, an address leased from the network's
 * IPAM and a MAC. The records live under ROOT/networks/NAME.json; the kernel side is made
 * through netlink (libmnl) and nftables (the nft tool, table "inet godwit"). Layer: hostnet
 * (beside hv and image; it includes only common). */
#ifndef GODWIT_HOSTNET_H
#define GODWIT_HOSTNET_H

#include <stdint.h>

#include "godwit/err.h"

#define GW_NET_NAME_MAX 32	/* [a-z0-9][a-z0-9_.-]*, at most 31 characters */
#define GW_IFNAME_MAX 16	/* IFNAMSIZ */
#define GW_CIDR_MAX 19		/* "255.255.255.255/32" and its NUL */

struct gw_network {
	char name[GW_NET_NAME_MAX];
	char bridge[GW_IFNAME_MAX];	/* "gw-" + a short hash of the name */
	uint32_t subnet;		/* network address, host byte order */
	int prefix;			/* 8 .. 30 */
	uint32_t gateway;		/* host byte order; the host holds it on the bridge */
	int nat;			/* masquerade what leaves the subnet */
};

/* "10.89.0.0/24" -> addr (host order), prefix; the address must be the network address. */
int gw_parse_cidr(const char *s, uint32_t *addr, int *prefix, struct gw_err *err);
/* "10.89.0.11" -> host order */
int gw_parse_ipv4(const char *s, uint32_t *addr, struct gw_err *err);
/* host order -> dotted quad in buf (at least 16 bytes) */
const char *gw_fmt_ipv4(uint32_t addr, char *buf);
/* address and prefix -> "10.89.0.0/24" in buf */
const char *gw_fmt_cidr(uint32_t addr, int prefix, char buf[GW_CIDR_MAX]);

/* Create the record, the bridge with the gateway address, and the NAT rules (n->name,
 * subnet, prefix, gateway and nat given; n->bridge is filled in). Refuses a bad name, a taken
 * name, a subnet that overlaps another network's of this root or a route of the host's main
 * table (default routes aside), a gateway outside the subnet or on its network or broadcast
 * address, an existing link of the bridge's name; on failure nothing is left behind.
 * gateway 0: the subnet's first address. */
int gw_network_create(const char *root, struct gw_network *n, struct gw_err *err);
int gw_network_load(const char *root, const char *name, struct gw_network *n,
		    struct gw_err *err);
/* The bridge, its address and the rules exist (again, after a host reboot): idempotent. */
int gw_network_up(const struct gw_network *n, struct gw_err *err);
/* Remove the rules, the bridge and the record; refused while a container holds a lease. */
int gw_network_remove(const char *root, const char *name, struct gw_err *err);
/* Call fn for each network, by name. */
int gw_network_each(const char *root, int (*fn)(const struct gw_network *n, void *opaque),
		    void *opaque, struct gw_err *err);

/* IPAM. Lease an address on network `name` for container `ct`: *ip 0 asks for the next free
 * one, else that address (refused outside the subnet, the gateway, network/broadcast, or
 * held by another container). A container's second lease returns its first (a different
 * explicit address is refused). Persisted in the network's record, safe against concurrent
 * callers (flock). */
int gw_network_lease(const char *root, const char *name, const char *ct, uint32_t *ip,
		     struct gw_err *err);
/* Give back ct's address (nothing when it holds none). */
int gw_network_release(const char *root, const char *name, const char *ct, struct gw_err *err);
/* How many leases the network holds. */
int gw_network_leases(const char *root, const char *name, struct gw_err *err);
/* The network and its leases as pretty-printed JSON (`network inspect`; the record's own
 * format: name, bridge, subnet, gateway, nat, leases {container: address}); free() it. */
int gw_network_json(const char *root, const char *name, char **out, struct gw_err *err);

/* A persistent tap named `tap` (a name of gw_tap_name's: others are refused), owned by nobody
 * in particular, enslaved to `bridge` and up: QEMU opens it by name (-netdev
 * tap,ifname=...). Idempotent. */
int gw_tap_create(const char *tap, const char *bridge, struct gw_err *err);
/* Delete the link (nothing when it does not exist). */
int gw_tap_delete(const char *tap, struct gw_err *err);
/* The tap name of a container: "gwt" + a short hash of root and name (unique per host). */
void gw_tap_name(const char *root, const char *ct, char out[GW_IFNAME_MAX]);

#endif
