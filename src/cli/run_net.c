/* A container's place on a network (docs/network.md): `run --network NAME [--ip IP]
 * [--mac MAC]` leases its address from the network's IPAM and picks its MAC (`run -p` alone:
 * on the default network); `rm` gives them back and takes away a tap that a dead shim left
 * behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "godwit/container.h"
#include "godwit/hostnet.h"
#include "godwit/util.h"

/* 52:54:00 (QEMU's prefix) and three random bytes */
static void random_mac(char out[18])
{
	unsigned char r[3] = { 0 };
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", r[0], r[1], r[2]);
}

static int valid_mac(const char *m)
{
	unsigned v[6];
	char tail;
	if (strlen(m) != 17 || sscanf(m, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &tail) != 6)
		return 0;
	return !(v[0] & 1) && (v[0] | v[1] | v[2] | v[3] | v[4] | v[5]); /* unicast, not zero */
}

/* the -p specs, one port each */
static int ports_of(const struct run_net *o, struct gw_port *p, size_t *n, struct gw_err *err)
{
	*n = 0;
	for (size_t i = 0; i < o->npublish; i++) {
		int r = gw_port_parse(o->publish[i], p, GW_PORTS_MAX, n, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < *n; i++)
		for (size_t j = 0; j < i; j++)
			if (p[i].udp == p[j].udp && p[i].host_port == p[j].host_port)
				return gw_err_set(err, EINVAL, "host port %u/%s is published twice",
						  p[i].host_port, p[i].udp ? "udp" : "tcp");
	return 0;
}

int run_net_check(const struct run_net *o, struct gw_err *err)
{
	int none = !o->network || !strcmp(o->network, "none");
	if (none && (o->ip || o->mac))
		return gw_err_set(err, EINVAL, "--ip and --mac need --network NAME");
	if (o->network && !strcmp(o->network, "none") && o->npublish)
		return gw_err_set(err, EINVAL, "-p needs a network, and --network none has none");
	struct gw_port p[GW_PORTS_MAX];
	size_t n;
	if (ports_of(o, p, &n, err) < 0)
		return -EINVAL;
	if (o->mac && !valid_mac(o->mac))
		return gw_err_set(err, EINVAL, "invalid --mac '%s' (a unicast address like "
				  "52:54:00:12:34:56)", o->mac);
	uint32_t ip;
	if (o->ip && gw_parse_ipv4(o->ip, &ip, err) < 0)
		return gw_err_prefix(err, "invalid --ip");
	return 0;
}

int run_net_attach(const struct gw_cli *cli, const struct run_net *o, struct ct_config *cfg,
		   struct gw_err *err)
{
	/* -p alone: the default network, made on first use */
	if (!o->network && !o->npublish)
		return 0;
	if (o->network && !strcmp(o->network, "none"))
		return 0;
	struct gw_network n;
	uint32_t ip = 0;
	int r = o->network ? gw_network_load(cli->root, o->network, &n, err)
			   : gw_network_default(cli->root, &n, err);
	/* the host has no address, and so no route, on an uplink network's segment */
	if (r == 0 && n.uplink[0] && o->npublish)
		r = gw_err_set(err, EINVAL, "-p: network %s is on uplink %s, where the host has no "
			       "address to forward from: publish ports on a NAT network", n.name,
			       n.uplink);
	if (r == 0 && o->ip)
		r = gw_parse_ipv4(o->ip, &ip, err);
	if (r == 0)
		r = gw_network_lease(cli->root, n.name, cfg->name, &ip, err);
	if (r < 0)
		return r;
	snprintf(cfg->network, sizeof(cfg->network), "%s", n.name);
	gw_fmt_ipv4(ip, cfg->ip);
	if (o->mac)
		snprintf(cfg->nic_mac, sizeof(cfg->nic_mac), "%s", o->mac);
	else
		random_mac(cfg->nic_mac);
	struct gw_port p[GW_PORTS_MAX];
	size_t np = 0;
	if (ports_of(o, p, &np, err) < 0)
		return -EINVAL;
	if (np && !(cfg->ports = calloc(np + 1, sizeof(char *))))
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < np; i++) {
		char s[GW_PORT_STR_MAX];
		gw_port_fmt(&p[i], s);
		if (!(cfg->ports[i] = strdup(s)))
			return gw_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

void run_net_detach(const struct gw_cli *cli, const char *name, const char *network)
{
	char tap[GW_IFNAME_MAX];
	gw_tap_name(cli->root, name, tap);
	if (!network || !*network)
		return;
	gw_ports_remove(tap, NULL);
	gw_tap_delete(tap, NULL);
	gw_network_release(cli->root, network, name, NULL);
}
