/* The hostnet layer's own pieces (include/godwit/hostnet.h is its public face): address
 * arithmetic, names, the network record, netlink and nftables. Only src/hostnet includes it. */
#ifndef GODWIT_HOSTNET_INT_H
#define GODWIT_HOSTNET_INT_H

#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "godwit/hostnet.h"

static inline void hn_json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define cleanup_json __attribute__((cleanup(hn_json_putp)))

/* cidr.c: the netmask of a prefix (0..32), host order */
uint32_t hn_mask(int prefix);
/* the last address of a subnet */
uint32_t hn_broadcast(uint32_t subnet, int prefix);
/* two subnets share an address */
int hn_overlaps(uint32_t a, int pa, uint32_t b, int pb);
/* addr inside subnet/prefix */
int hn_contains(uint32_t subnet, int prefix, uint32_t addr);

/* names.c: a network name is [a-z0-9][a-z0-9_.-]*, shorter than GW_NET_NAME_MAX */
int hn_valid_name(const char *name);
/* "gw-" + 8 hex digits of SHA-256(name) */
void hn_bridge_name(const char *name, char out[GW_IFNAME_MAX]);
/* a NAT network's bridge MAC: locally administered, from its name, subnet and gateway, so
 * that every host gives the same network's gateway the same MAC and a guest moved between
 * them finds its gateway where its ARP cache says */
void hn_bridge_mac(const struct gw_network *n, unsigned char mac[6]);

/* check.c: what a network and its leases must be; each refusal says why, naming the network.
 * hn_bad_name sets the error for a name hn_valid_name refused. */
int hn_bad_name(const char *name, struct gw_err *err);
/* a valid name, prefix /8../30, the network address, a usable gateway inside the subnet */
int hn_network_check(const struct gw_network *n, struct gw_err *err);
/* addr can be given to a host of n: inside the subnet, neither its network nor its broadcast
 * address (what: "address", "gateway") */
int hn_addr_check(const struct gw_network *n, uint32_t addr, const char *what,
		  struct gw_err *err);
/* leases: a JSON object {container: "a.b.c.d"}, each a valid container name and a distinct
 * usable address that is not the gateway */
int hn_leases_check(const struct gw_network *n, struct json_object *leases, struct gw_err *err);
/* the same, handing out the leased addresses in ascending order (malloc'd) */
int hn_lease_addrs(const struct gw_network *n, struct json_object *leases, uint32_t **out,
		   size_t *len, struct gw_err *err);

/* record.c: ROOT/networks/NAME.json holds the network and its leases ({container: "ip"});
 * read validates everything (a corrupt record is an error naming the file). leases may be
 * NULL when the caller needs none; else a new JSON object the caller puts. */
int hn_record_read(const char *root, const char *name, struct gw_network *n,
		   struct json_object **leases, struct gw_err *err);
int hn_record_write(const char *root, const struct gw_network *n, struct json_object *leases,
		    struct gw_err *err);
/* 1 when NAME's record exists, 0 when not, < 0 on error */
int hn_record_exists(const char *root, const char *name, struct gw_err *err);
int hn_record_remove(const char *root, const char *name, struct gw_err *err);
/* An exclusive flock on ROOT/networks/lock (made with the directory): the fd to close. Every
 * change to a record (create, remove, lease, release) holds it. */
int hn_lock(const char *root, struct gw_err *err);
/* hn_lock, then hn_record_read: the lock's fd (to close when the change is written) */
int hn_record_lock_read(const char *root, const char *name, struct gw_network *n,
			struct json_object **leases, struct gw_err *err);

/* nl.c: send the rtnetlink request nlh (its seq and, without cb, NLM_F_ACK are set here) and
 * read the answer: cb (libmnl's callback) for each message of a dump, or the acknowledgement.
 * A refusal is -errno with "what: strerror" in err. */
struct nlmsghdr;
int hn_nl_talk(struct nlmsghdr *nlh, int (*cb)(const struct nlmsghdr *, void *), void *data,
	       const char *what, struct gw_err *err);

/* link.c: rtnetlink through libmnl. Each call is one request and its acknowledgement. */
int hn_link_index(const char *ifname);	/* 0 when there is no such link */
/* a bridge, with the MAC address mac (6 bytes; NULL: the kernel's); EEXIST: -EEXIST, no err */
int hn_link_bridge_add(const char *ifname, const unsigned char *mac, struct gw_err *err);
int hn_link_addr_add(const char *ifname, uint32_t addr, int prefix, struct gw_err *err);
/* up or down, and on master (NULL: leave the master as it is) */
int hn_link_set(const char *ifname, const char *master, int up, struct gw_err *err);
int hn_link_del(const char *ifname, struct gw_err *err);	/* no such link: 0 */

/* route.c: the first IPv4 route of the main table (default routes aside) whose destination
 * overlaps subnet/prefix, as "10.0.0.0/8 dev eth0" in found: 1; none: 0; < 0 on error. */
int hn_route_overlap(uint32_t subnet, int prefix, char *found, size_t len, struct gw_err *err);

/* nat.c: the network's chains in table inet godwit (made, or replaced: idempotent) */
int hn_nat_add(const struct gw_network *n, struct gw_err *err);
/* remove them (nothing when they are gone) */
int hn_nat_remove(const struct gw_network *n, struct gw_err *err);
/* /proc/sys/net/ipv4/ip_forward = 1 */
int hn_ip_forward_on(struct gw_err *err);
/* run an nft script (one transaction): "add table inet godwit", then what body writes */
int hn_nft(void (*body)(FILE *, const void *), const void *arg, struct gw_err *err);
/* write "1" to a /proc/sys file */
int hn_sysctl_on(const char *path, struct gw_err *err);

#endif
