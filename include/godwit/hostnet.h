/* Container networks on this host (docs/network.md): a network is a Linux bridge with a
 * subnet, the host's gateway address on it and (unless --no-nat) masquerading to the host's
 * uplinks; each container on it has a tap on the bridge, an address leased from the network's
 * IPAM and a MAC. The records live under ROOT/networks/NAME.json; the kernel side is made
 * through netlink (libmnl) and nftables (the nft tool, table "inet godwit"). Layer: hostnet
 * (beside hv and image; it includes only common). */
#ifndef GODWIT_HOSTNET_H
#define GODWIT_HOSTNET_H

#include <stdint.h>
#include <sys/types.h>

#include "godwit/err.h"

#define GW_NET_NAME_MAX 32	/* [a-z0-9][a-z0-9_.-]*, at most 31 characters */
#define GW_IFNAME_MAX 16	/* IFNAMSIZ */
#define GW_CIDR_MAX 19		/* "255.255.255.255/32" and its NUL */

struct gw_network {
	char name[GW_NET_NAME_MAX];
	char bridge[GW_IFNAME_MAX];	/* "gw-" + a short hash of the name */
	uint32_t subnet;		/* network address, host byte order */
	int prefix;			/* 8 .. 30 */
	uint32_t gateway;		/* host byte order; the host holds it on the bridge,
					 * unless the network has an uplink */
	int nat;			/* masquerade what leaves the subnet */
	char uplink[GW_IFNAME_MAX];	/* "": none; else the host's interface the bridge
					 * enslaves: the containers sit on its segment, whose
					 * router is the gateway (no NAT, no address of the
					 * host's) */
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
 * subnet, prefix, gateway, nat and uplink given; n->bridge is filled in); with an uplink,
 * the bridge enslaves it instead and takes no address. Refuses a bad name, a taken name, a
 * subnet that overlaps another network's of this root or (without an uplink) a route of the
 * host's main table (default routes aside), a gateway outside the subnet or on its network or
 * broadcast address, an existing link of the bridge's name, an uplink that does not exist,
 * is godwit's own or another network's, NAT with an uplink; on failure nothing is left
 * behind. gateway 0: the subnet's first address. */
int gw_network_create(const char *root, struct gw_network *n, struct gw_err *err);
int gw_network_load(const char *root, const char *name, struct gw_network *n,
		    struct gw_err *err);
/* The default network, like podman's: "godwit", 10.88.0.0/16, gateway 10.88.0.1, NAT; made
 * on first use (`run -p` without --network, a move of a container on it). */
#define GW_NET_DEFAULT "godwit"
int gw_network_default(const char *root, struct gw_network *n, struct gw_err *err);
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
 * tap,ifname=...). Idempotent. sealed: left down, so that no frame passes between it and the
 * bridge (a migrating container's, until COMMIT), until gw_tap_unseal brings it up. */
int gw_tap_create(const char *tap, const char *bridge, int sealed, struct gw_err *err);
int gw_tap_unseal(const char *tap, struct gw_err *err);
/* Let uid/gid (QEMU's user) attach to the tap by name (TUNSETOWNER, TUNSETGROUP). */
int gw_tap_set_owner(const char *tap, uid_t uid, gid_t gid, struct gw_err *err);
/* Delete the link (nothing when it does not exist). */
int gw_tap_delete(const char *tap, struct gw_err *err);
/* The tap name of a container: "gwt" + a short hash of root and name (unique per host). */
void gw_tap_name(const char *root, const char *ct, char out[GW_IFNAME_MAX]);

/* Published ports (docs/network.md): the host's HOST_IP:HOST_PORT (host_ip 0: every address
 * of the host, 127.0.0.1 included) reaches the container's PORT. */
struct gw_port {
	int udp;
	uint32_t host_ip;	/* host order; 0: any */
	uint16_t host_port, ct_port;
};
#define GW_PORTS_MAX 64
#define GW_PORT_STR_MAX 40
/* "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]", each port a number or a range "8080-8089" (both
 * ranges of one length): appended to out[*n], at most max in all */
int gw_port_parse(const char *spec, struct gw_port *out, size_t max, size_t *n,
		  struct gw_err *err);
/* one port as the record keeps it, "tcp:0.0.0.0:8080:80", and back */
void gw_port_fmt(const struct gw_port *p, char buf[GW_PORT_STR_MAX]);
int gw_port_from_str(const char *s, struct gw_port *p, struct gw_err *err);
/* Hold the host port (a bound socket, never listening: the DNAT takes the packets first),
 * so that nothing else of this host takes it while the container has it; refused with
 * "port 8080/tcp is in use on this host" when it is taken. The fd goes with its holder. */
int gw_port_hold(const struct gw_port *p, struct gw_err *err);
/* The container's DNAT chains in table inet godwit, named after its tap: made fresh
 * (idempotent) for ports to ct_ip on bridge, or removed (nothing when there are none). */
int gw_ports_add(const char *tap, const char *bridge, uint32_t subnet, int prefix,
		 uint32_t ct_ip, const struct gw_port *p, size_t n, struct gw_err *err);
int gw_ports_remove(const char *tap, struct gw_err *err);

#endif
