/* A container's NIC on its network (docs/network.md): before its QEMU starts, the shim makes
 * sure the network's bridge is up and puts a tap of the container's own on it (QEMU opens it
 * by name); the main process's START tells the agent the address, gateway and name servers;
 * the tap goes with the shim. A migration's destination takes up the container's network,
 * address and ports before its QEMU starts, its tap sealed until COMMIT. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "godwit/hostnet.h"
#include "godwit/hv_vm.h"
#include "godwit/util.h"
#include "shim.h"

/* The published ports: each host port held (nothing else of this host may take it), then the
 * DNAT rules to the container's address */
static int publish_ports(struct container *ct, uint32_t ip, struct gw_err *err)
{
	struct gw_port p[GW_PORTS_MAX];
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && ct->cfg.ports && ct->cfg.ports[i] && n < GW_PORTS_MAX; i++)
		if ((r = gw_port_from_str(ct->cfg.ports[i], &p[n], err)) == 0)
			n++;
	for (size_t i = 0; r == 0 && i < n; i++) {
		int fd = gw_port_hold(&p[i], err);
		if (fd < 0)
			r = fd;
		else
			ct->port_fds[ct->nports++] = fd;
	}
	if (r == 0 && n)
		r = gw_ports_add(ct->tap, ct->net.bridge, ct->net.subnet, ct->net.prefix, ip, p, n,
				 err);
	return r;
}

int shim_net_up(struct container *ct, struct gw_err *err)
{
	if (!ct->cfg.network[0])
		return 0;
	uint32_t ip;
	int r = gw_network_load(ct->root, ct->cfg.network, &ct->net, err);
	if (r == 0 && (r = gw_parse_ipv4(ct->cfg.ip, &ip, err)) < 0)
		gw_err_prefix(err, "container %s's address", ct->cfg.name);
	if (r == 0)
		r = gw_network_up(&ct->net, err);
	if (r < 0)
		return gw_err_prefix(err, "network %s", ct->cfg.network);
	gw_tap_name(ct->root, ct->cfg.name, ct->tap);
	if ((r = gw_tap_create(ct->tap, ct->net.bridge, ct->net_sealed, err)) < 0) {
		ct->tap[0] = '\0';
		return gw_err_prefix(err, "network %s", ct->cfg.network);
	}
	if ((r = publish_ports(ct, ip, err)) < 0)
		shim_net_down(ct);
	return r;
}

void shim_net_down(struct container *ct)
{
	if (ct->nports)
		gw_ports_remove(ct->tap, NULL);
	for (int i = 0; i < ct->nports; i++)
		close(ct->port_fds[i]);
	ct->nports = 0;
	if (ct->tap[0])
		gw_tap_delete(ct->tap, NULL);
	ct->tap[0] = '\0';
}

/* CONFIG's "net": what the destination's network of the same name must be */
json_object *shim_net_config_json(const struct container *ct)
{
	if (!ct->cfg.network[0])
		return NULL;
	char cidr[GW_CIDR_MAX], gw[16];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "subnet", json_object_new_string(gw_fmt_cidr(ct->net.subnet,
									       ct->net.prefix, cidr)));
	json_object_object_add(o, "gateway", json_object_new_string(gw_fmt_ipv4(ct->net.gateway, gw)));
	return o;
}

/* the source's subnet and gateway (CONFIG's "net", untrusted) are this network's */
static int same_network(const struct gw_network *n, json_object *want, struct gw_err *err)
{
	json_object *v;
	const char *subnet = json_object_object_get_ex(want, "subnet", &v) ? json_object_get_string(v) : NULL;
	const char *gateway = json_object_object_get_ex(want, "gateway", &v) ? json_object_get_string(v) : NULL;
	uint32_t s = 0, g = 0;
	int prefix = 0;
	char here[GW_CIDR_MAX], gw[16];
	if (!subnet || !gateway || gw_parse_cidr(subnet, &s, &prefix, err) < 0 ||
	    gw_parse_ipv4(gateway, &g, err) < 0)
		return gw_err_set(err, EPROTO, "CONFIG: \"net\" needs a subnet and a gateway");
	if (s != n->subnet || prefix != n->prefix || g != n->gateway)
		return gw_err_set(err, EINVAL, "network %s here is %s with gateway %s; the "
				  "container's is %.18s with gateway %.15s", n->name,
				  gw_fmt_cidr(n->subnet, n->prefix, here), gw_fmt_ipv4(n->gateway, gw),
				  subnet, gateway);
	return 0;
}

/* the reason code of a refusal, and its error */
static int refuse(char *reason, size_t rlen, const char *code, int r)
{
	snprintf(reason, rlen, "%s", code);
	return r;
}

int shim_net_take(struct container *ct, json_object *want, char *reason, size_t rlen,
		  struct gw_err *err)
{
	if (!ct->cfg.network[0])
		return 0;
	uint32_t ip;
	/* the default network is made on first use, here too */
	int r = strcmp(ct->cfg.network, GW_NET_DEFAULT)
			? gw_network_load(ct->root, ct->cfg.network, &ct->net, err)
			: gw_network_default(ct->root, &ct->net, err);
	if (r == -ENOENT)
		return refuse(reason, rlen, "network-missing",
			      gw_err_set(err, ENOENT, "this host has no network %s: create it with "
					 "the source's subnet and gateway first", ct->cfg.network));
	if (r < 0)
		return refuse(reason, rlen, "network", r);
	if (!want)
		return refuse(reason, rlen, "bad-config",
			      gw_err_set(err, EPROTO, "CONFIG: a container on network %s without "
					 "\"net\"", ct->cfg.network));
	if ((r = same_network(&ct->net, want, err)) < 0)
		return refuse(reason, rlen, r == -EPROTO ? "bad-config" : "network-mismatch", r);
	if ((r = gw_parse_ipv4(ct->cfg.ip, &ip, err)) < 0)
		return refuse(reason, rlen, "bad-config", r);
	if ((r = gw_network_lease(ct->root, ct->cfg.network, ct->cfg.name, &ip, err)) < 0)
		return refuse(reason, rlen, "ip-taken", r);
	ct->net_leased = 1;
	ct->net_sealed = 1; /* until COMMIT: never two copies on the segment at once */
	if ((r = shim_net_up(ct, err)) < 0)
		return refuse(reason, rlen, r == -EADDRINUSE ? "port-busy" : "network", r);
	return 0;
}

int shim_net_unseal(struct container *ct, struct gw_err *err)
{
	if (!ct->tap[0] || !ct->net_sealed)
		return 0;
	int r = gw_tap_unseal(ct->tap, err);
	if (r == 0)
		ct->net_sealed = 0;
	/* the segment learns at once where the guest's MAC is now */
	if (r == 0)
		r = hv_vm_announce(ct->qmp, 5000, err);
	return r;
}

void shim_net_leave(struct container *ct)
{
	shim_net_down(ct);
	if (ct->cfg.network[0])
		gw_network_release(ct->root, ct->cfg.network, ct->cfg.name, NULL);
	ct->net_leased = 0;
}

/* The name servers the container gets: the host's, but not one on its own loopback (a
 * caching resolver there is out of the guest's reach): then the network's gateway, where a
 * NAT network's host answers nothing, so none. */
static void add_dns(json_object *arr)
{
	FILE *f = fopen("/etc/resolv.conf", "re");
	char line[256], addr[64];
	struct in_addr a;
	int n = 0;
	while (f && n < 3 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "nameserver %63s", addr) != 1 || inet_pton(AF_INET, addr, &a) != 1 ||
		    (ntohl(a.s_addr) >> 24) == 127)
			continue;
		json_object_array_add(arr, json_object_new_string(addr));
		n++;
	}
	if (f)
		fclose(f);
}

json_object *shim_net_start_json(const struct container *ct)
{
	if (!ct->cfg.network[0] || !ct->tap[0])
		return NULL;
	char gw[16];
	json_object *o = json_object_new_object(), *dns = json_object_new_array();
	json_object_object_add(o, "mac", json_object_new_string(ct->cfg.nic_mac));
	json_object_object_add(o, "ip", json_object_new_string(ct->cfg.ip));
	json_object_object_add(o, "prefix", json_object_new_int(ct->net.prefix));
	json_object_object_add(o, "gateway", json_object_new_string(gw_fmt_ipv4(ct->net.gateway, gw)));
	add_dns(dns);
	json_object_object_add(o, "dns", dns);
	return o;
}
