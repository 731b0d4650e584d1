/* `godwit network create|ls|inspect|rm`: container networks on this host (docs/network.md).
 * One option table serves every subcommand; each refuses the flags that are not its own. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "godwit/hostnet.h"
#include "godwit/util.h"

struct net_opts {
	const char *subnet, *gateway, *uplink;
	int no_nat;
};

struct sub {
	const char *name, *usage, *about;
	int min, max; /* operands; max -1: any number */
	int (*fn)(struct gw_cli *cli, const struct net_opts *o, int argc, char **argv);
};

static const char OPTIONS[] =
	"      --subnet CIDR  (create) the network's IPv4 subnet, /8 to /30, e.g. 10.89.0.0/24\n"
	"      --gateway IP   (create) the host's address on the bridge (default: the\n"
	"                     subnet's first address)\n"
	"      --no-nat       (create) no masquerading: containers reach the host and each\n"
	"                     other, nothing beyond\n"
	"      --uplink IFACE (create) the bridge enslaves this host interface: containers sit\n"
	"                     on its segment, whose router is --gateway; the host takes no\n"
	"                     address on the bridge and does no NAT\n"
	"  -h, --help         this help\n";

static int net_create(struct gw_cli *cli, const struct net_opts *o, int argc, char **argv)
{
	struct gw_network n = { .nat = !o->no_nat && !o->uplink };
	struct gw_err err = { 0 };
	(void)argc;
	if (!o->subnet)
		return cli_usage_error("network create", "--subnet is required");
	if (o->uplink && strlen(o->uplink) >= sizeof(n.uplink))
		return cli_usage_error("network create", "--uplink \"%.20s...\": an interface name "
				       "has at most %d characters", o->uplink, GW_IFNAME_MAX - 1);
	if (o->uplink)
		strcpy(n.uplink, o->uplink);
	if (strlen(argv[0]) >= sizeof(n.name))
		return cli_usage_error("network create", "network name \"%.40s...\" is too long "
				       "(at most %d characters)", argv[0], GW_NET_NAME_MAX - 1);
	strcpy(n.name, argv[0]);
	if (gw_parse_cidr(o->subnet, &n.subnet, &n.prefix, &err) < 0 ||
	    (o->gateway && gw_parse_ipv4(o->gateway, &n.gateway, &err) < 0) ||
	    gw_network_create(cli->root, &n, &err) < 0)
		return cli_fail("network create", &err);
	printf("%s\n", n.name);
	return 0;
}

static int ls_row(const struct gw_network *n, void *opaque)
{
	struct gw_cli *cli = opaque;
	struct gw_err err = { 0 };
	char gw[16], cidr[GW_CIDR_MAX];
	int leases = gw_network_leases(cli->root, n->name, &err);
	printf("%-20s %-12s %-18s %-15s %-4s %-15s %d\n", n->name, n->bridge,
	       gw_fmt_cidr(n->subnet, n->prefix, cidr), gw_fmt_ipv4(n->gateway, gw),
	       n->nat ? "yes" : "no", n->uplink[0] ? n->uplink : "-", leases < 0 ? 0 : leases);
	return 0;
}

static int net_ls(struct gw_cli *cli, const struct net_opts *o, int argc, char **argv)
{
	struct gw_err err = { 0 };
	(void)o, (void)argc, (void)argv;
	printf("%-20s %-12s %-18s %-15s %-4s %-15s %s\n", "NAME", "BRIDGE", "SUBNET", "GATEWAY",
	       "NAT", "UPLINK", "CONTAINERS");
	if (gw_network_each(cli->root, ls_row, cli, &err) < 0)
		return cli_fail("network ls", &err);
	return 0;
}

static int net_inspect(struct gw_cli *cli, const struct net_opts *o, int argc, char **argv)
{
	struct gw_err err = { 0 };
	cleanup_free char *json = NULL;
	(void)o, (void)argc;
	if (gw_network_json(cli->root, argv[0], &json, &err) < 0)
		return cli_fail("network inspect", &err);
	fputs(json, stdout);
	return 0;
}

static int rm_one(struct gw_cli *cli, const char *name, int arg, struct gw_err *err)
{
	(void)arg;
	return gw_network_remove(cli->root, name, err);
}

static int net_rm(struct gw_cli *cli, const struct net_opts *o, int argc, char **argv)
{
	(void)o;
	return cli_for_each(cli, "network rm", argc, argv, 0, rm_one);
}

static const struct sub SUBS[] = {
	{ "create", "create NAME --subnet CIDR [--gateway IP] [--no-nat | --uplink IFACE]",
	  "Create a network: a bridge with the gateway address, NAT to the host's uplinks; or a\n"
	  "bridge on the segment of the host interface --uplink.", 1, 1, net_create },
	{ "ls", "ls", "List networks: name, bridge, subnet, gateway, NAT, uplink, containers.", 0,
	  0, net_ls },
	{ "inspect", "inspect NAME", "Print a network and its leases as JSON.", 1, 1,
	  net_inspect },
	{ "rm", "rm NAME [NAME...]", "Remove networks (their bridges and rules) that no container "
	  "uses.", 1, -1, net_rm },
};

static void usage(const struct sub *s)
{
	printf("Usage:");
	for (size_t i = 0; i < ARRAY_SIZE(SUBS); i++)
		if (!s || s == &SUBS[i])
			printf("%s godwit network %s\n", i && !s ? "      " : "", SUBS[i].usage);
	printf("\n%s\n\n%s", s ? s->about : "Manage container networks (docs/network.md).",
	       s && strcmp(s->name, "create") ? "  -h, --help         this help\n" : OPTIONS);
}

/* the flags after the subcommand; -1: print help and exit 0, -2: a usage error (printed) */
static int parse_opts(const struct sub *s, int argc, char **argv, struct net_opts *o)
{
	static const struct option opts[] = {
		{ "subnet", required_argument, NULL, 's' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "no-nat", no_argument, NULL, 'n' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char cmd[32];
	int c;
	snprintf(cmd, sizeof(cmd), "network %s", s->name);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(s);
			return -1;
		}
		if (c == '?' || strcmp(s->name, "create")) {
			cli_usage_error(cmd, c == '?' ? "bad option" : "%s takes no such flag",
					cmd);
			return -2;
		}
		switch (c) {
		case 's': o->subnet = optarg; break;
		case 'g': o->gateway = optarg; break;
		case 'u': o->uplink = optarg; break;
		default: o->no_nat = 1; break;
		}
	}
	int n = argc - optind;
	if (n < s->min || (s->max >= 0 && n > s->max)) {
		cli_usage_error(cmd, n < s->min ? "NAME is missing" : "too many arguments");
		return -2;
	}
	return 0;
}

int cmd_network(struct gw_cli *cli, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc < 2)
			return cli_usage_error("network", "want a subcommand: create, ls, inspect, rm");
		usage(NULL);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(SUBS); i++) {
		if (strcmp(argv[1], SUBS[i].name))
			continue;
		struct net_opts o = { 0 };
		int r = parse_opts(&SUBS[i], argc - 1, argv + 1, &o);
		if (r < 0)
			return r == -1 ? 0 : GW_EXIT_ERROR;
		return SUBS[i].fn(cli, &o, argc - 1 - optind, argv + 1 + optind);
	}
	return cli_usage_error("network", "unknown subcommand '%s' (create, ls, inspect, rm)",
			       argv[1]);
}
