/* A container's NIC on its network (docs/network.md): before its QEMU starts, the shim makes
 * sure the network's bridge is up and puts a tap of the container's own on it (QEMU opens it
 * by name); the main process's START tells the agent the address, gateway and name servers;
 * the tap goes with the shim. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "godwit/hostnet.h"
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
	if ((r = gw_tap_create(ct->tap, ct->net.bridge, err)) < 0) {
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
