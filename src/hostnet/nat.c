/* A network's rules in nftables (docs/network.md), made by the nft tool from a script on its
 * stdin, one transaction each. Table "inet godwit" holds two base chains per NAT network,
 * named after its bridge: nat-BRIDGE (postrouting: masquerade what leaves the subnet) and
 * fwd-BRIDGE (forward: accept what comes from or goes to the bridge). Owning whole chains
 * makes both making (flush, then add) and removing (delete the chains) exact and idempotent. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "godwit/proc.h"
#include "godwit/util.h"
#include "hostnet_int.h"

#define TABLE "inet godwit"

static const struct chain {
	const char *kind;	/* the chain's name is KIND-BRIDGE */
	const char *hook;
} CHAINS[] = {
	{ "nat", "type nat hook postrouting priority srcnat" },
	{ "fwd", "type filter hook forward priority filter" },
};

/* the chain (made if missing, emptied if not): idempotent in one transaction */
static void chain_fresh(FILE *f, const struct chain *c, const char *bridge)
{
	fprintf(f, "add chain " TABLE " %s-%s { %s; policy accept; }\n", c->kind, bridge, c->hook);
	fprintf(f, "flush chain " TABLE " %s-%s\n", c->kind, bridge);
}

static void rules_add(FILE *f, const void *arg)
{
	const struct gw_network *n = arg;
	char net[GW_CIDR_MAX];
	gw_fmt_cidr(n->subnet, n->prefix, net);
	chain_fresh(f, &CHAINS[0], n->bridge);
	fprintf(f, "add rule " TABLE " nat-%s ip saddr %s ip daddr != %s masquerade comment "
		   "\"godwit network %s\"\n", n->bridge, net, net, n->name);
	chain_fresh(f, &CHAINS[1], n->bridge);
	fprintf(f, "add rule " TABLE " fwd-%s iifname \"%s\" accept comment \"godwit network %s\"\n",
		n->bridge, n->bridge, n->name);
	fprintf(f, "add rule " TABLE " fwd-%s oifname \"%s\" accept comment \"godwit network %s\"\n",
		n->bridge, n->bridge, n->name);
}

static void rules_remove(FILE *f, const void *arg)
{
	const struct gw_network *n = arg;
	for (size_t i = 0; i < ARRAY_SIZE(CHAINS); i++) {
		chain_fresh(f, &CHAINS[i], n->bridge); /* so that the delete finds one */
		fprintf(f, "delete chain " TABLE " %s-%s\n", CHAINS[i].kind, n->bridge);
	}
}

static int nft_script(const struct gw_network *n, void (*body)(FILE *, const void *),
		      const char *what, struct gw_err *err)
{
	int r = hn_nft(body, n, err);
	return r < 0 ? gw_err_prefix(err, "%s network %s's nftables rules", what, n->name) : 0;
}

int hn_nft(void (*body)(FILE *, const void *), const void *arg, struct gw_err *err)
{
	cleanup_free char *script = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&script, &len);
	if (!f)
		return gw_err_set(err, ENOMEM, "out of memory");
	fprintf(f, "add table " TABLE "\n");
	body(f, arg);
	if (fclose(f) != 0)
		return gw_err_set(err, ENOMEM, "out of memory");
	char *argv[] = { "nft", "-f", "/dev/stdin", NULL };
	return gw_run_input(argv, script, len, err);
}

int hn_nat_add(const struct gw_network *n, struct gw_err *err)
{
	return nft_script(n, rules_add, "make", err);
}

int hn_nat_remove(const struct gw_network *n, struct gw_err *err)
{
	return nft_script(n, rules_remove, "remove", err);
}

int hn_sysctl_on(const char *path, struct gw_err *err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	int r = gw_write_full(fd, "1\n", 2);
	return r < 0 ? gw_err_sys(err, -r, "write %s", path) : 0;
}

int hn_ip_forward_on(struct gw_err *err)
{
	return hn_sysctl_on("/proc/sys/net/ipv4/ip_forward", err);
}
