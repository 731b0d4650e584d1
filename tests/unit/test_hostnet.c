/* Unit tests for the hostnet layer (src/hostnet): addresses and subnets as text, the network
 * record (round trip, every kind of corruption refused), IPAM (next free, explicit addresses,
 * persistence, exhaustion, release). As root, in a network namespace of the test's own
 * (unshare), also the kernel side: create (bridge, address, overlaps with networks and
 * routes, nothing left after a failure), remove, taps; without root those are skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwit/hostnet.h"
#include "godwit/proc.h"
#include "godwit/util.h"

static int in_own_netns; /* main: unshare(CLONE_NEWNET) worked */

/* ---- addresses ---- */

static void test_parse_ipv4(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	uint32_t a;
	char buf[16];
	assert_int_equal(gw_parse_ipv4("10.89.0.11", &a, &e), 0);
	assert_int_equal(a, 0x0a59000b);
	assert_string_equal(gw_fmt_ipv4(a, buf), "10.89.0.11");
	assert_string_equal(gw_fmt_ipv4(0xffffffff, buf), "255.255.255.255");
	static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4",
					   " 1.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4",
					   "1111111111111111111.1.1.1", "::1" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(gw_parse_ipv4(bad[i], &a, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "bad IPv4 address"));
	}
}

static void test_parse_cidr(void **state)
{
	(void)state;
	struct gw_err e = { 0 };
	uint32_t a;
	int p;
	char buf[GW_CIDR_MAX];
	assert_int_equal(gw_parse_cidr("10.89.0.0/24", &a, &p, &e), 0);
	assert_int_equal(a, 0x0a590000);
	assert_int_equal(p, 24);
	assert_string_equal(gw_fmt_cidr(a, p, buf), "10.89.0.0/24");
	assert_int_equal(gw_parse_cidr("0.0.0.0/0", &a, &p, &e), 0);
	assert_int_equal(gw_parse_cidr("10.1.2.3/32", &a, &p, &e), 0);
	static const char *const bad[] = { "10.89.0.0", "10.89.0.0/", "10.89.0.0/33",
					   "10.89.0.0/024", "10.89.0.0/2a", "/24", "10.89.0/24",
					   "10.89.0.0/24/1", "10.89.0.0/-1", "", "10.89.0.0/+8" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(gw_parse_cidr(bad[i], &a, &p, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "bad subnet"));
	}
	assert_int_equal(gw_parse_cidr("10.89.0.1/24", &a, &p, &e), -EINVAL);
	assert_string_equal(e.msg, "bad subnet \"10.89.0.1/24\": not a network address "
				   "(10.89.0.0/24 is)");
}

static void test_ports(void **state)
{
	(void)state;
	struct gw_port p[GW_PORTS_MAX];
	struct gw_err err = { 0 };
	size_t n = 0;
	char s[GW_PORT_STR_MAX];
	assert_int_equal(gw_port_parse("8080:80", p, GW_PORTS_MAX, &n, &err), 0);
	assert_int_equal(gw_port_parse("127.0.0.1:5353:53/udp", p, GW_PORTS_MAX, &n, &err), 0);
	assert_int_equal(gw_port_parse("9000-9002:7000-7002", p, GW_PORTS_MAX, &n, &err), 0);
	assert_int_equal(n, 5);
	gw_port_fmt(&p[0], s);
	assert_string_equal(s, "tcp:0.0.0.0:8080:80");
	gw_port_fmt(&p[1], s);
	assert_string_equal(s, "udp:127.0.0.1:5353:53");
	gw_port_fmt(&p[4], s);
	assert_string_equal(s, "tcp:0.0.0.0:9002:7002");
	struct gw_port back;
	assert_int_equal(gw_port_from_str("udp:127.0.0.1:5353:53", &back, &err), 0);
	assert_memory_equal(&back, &p[1], sizeof(back));
	static const char *const bad[] = { "80", "0:80", "80:65536", "x:80", "1.2.3:80:80",
		"80:80/sctp", "80-79:80-79", "80-81:80", ":80", "80:", "-1:80", "80--81:80-81" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t m = 0;
		assert_int_equal(gw_port_parse(bad[i], p, GW_PORTS_MAX, &m, &err), -EINVAL);
		assert_int_equal(m, 0);
	}
	n = 0;
	assert_int_equal(gw_port_parse("1000-1064:1000-1064", p, GW_PORTS_MAX, &n, &err), -E2BIG);
	static const char *const badstr[] = { "tcp:0.0.0.0:0:80", "icmp:0.0.0.0:1:1",
		"tcp:0.0.0.0:80:80x", "tcp:300.0.0.0:80:80" };
	for (size_t i = 0; i < sizeof(badstr) / sizeof(badstr[0]); i++)
		assert_int_equal(gw_port_from_str(badstr[i], &back, &err), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	char a[GW_IFNAME_MAX], b[GW_IFNAME_MAX];
	gw_tap_name("/var/lib/godwit", "web", a);
	gw_tap_name("/var/lib/godwit", "web2", b);
	assert_int_equal(strlen(a), 15);
	assert_memory_equal(a, "gwt", 3);
	assert_int_equal(strspn(a + 3, "0123456789abcdef"), 12);
	assert_string_not_equal(a, b);
	gw_tap_name("/other", "web", b);
	assert_string_not_equal(a, b);
}

/* ---- records and IPAM, from records written by hand ---- */

struct fx {
	char dir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/godwit-hostnet.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct gw_err e;
	gw_rm_rf(f->dir, &e);
	free(f);
	return 0;
}

static void write_text(const char *root, const char *file, const char *text)
{
	struct gw_err e = { 0 };
	char path[256];
	snprintf(path, sizeof(path), "%s/networks", root);
	assert_int_equal(gw_mkdir_p(path, 0755, &e), 0);
	snprintf(path, sizeof(path), "%s/networks/%s", root, file);
	assert_int_equal(gw_write_file(path, text, strlen(text), 0644, &e), 0);
}

/* a record of network name (its bridge as godwit names it: gw-... computed by create) */
static void write_record(const char *root, const char *name, const char *bridge,
			 const char *subnet, const char *gw, const char *leases)
{
	char text[1024], file[64];
	snprintf(text, sizeof(text), "{\"name\":\"%s\",\"bridge\":\"%s\",\"subnet\":\"%s\","
		 "\"gateway\":\"%s\",\"nat\":true,\"leases\":%s}", name, bridge, subnet, gw,
		 leases);
	snprintf(file, sizeof(file), "%s.json", name);
	write_text(root, file, text);
}

/* the bridge names godwit gives (gw- and SHA-256 of the name: python3 -c 'import hashlib;
 * print(hashlib.sha256(b"lan").hexdigest()[:8])') */
#define BR_LAN "gw-094a367b"
#define BR_TINY "gw-8950abfd"

static void test_record_round_trip(void **state)
{
	struct fx *f = *state;
	struct gw_network n;
	struct gw_err e = { 0 };
	write_record(f->dir, "tiny", BR_TINY, "10.1.0.0/29", "10.1.0.1", "{}");
	write_record(f->dir, "lan", BR_LAN, "10.89.0.0/24", "10.89.0.254", "{\"web\":\"10.89.0.7\"}");
	assert_int_equal(gw_network_load(f->dir, "lan", &n, &e), 0);
	assert_string_equal(n.name, "lan");
	assert_string_equal(n.bridge, BR_LAN);
	assert_int_equal(n.subnet, 0x0a590000);
	assert_int_equal(n.prefix, 24);
	assert_int_equal(n.gateway, 0x0a5900fe);
	assert_int_equal(n.nat, 1);
	assert_int_equal(gw_network_leases(f->dir, "lan", &e), 1);
	cleanup_free char *json = NULL;
	assert_int_equal(gw_network_json(f->dir, "lan", &json, &e), 0);
	assert_non_null(strstr(json, "\"subnet\":\"10.89.0.0/24\""));
	assert_non_null(strstr(json, "\"web\":\"10.89.0.7\""));
	/* what godwit writes it reads back the same */
	uint32_t ip = 0;
	assert_int_equal(gw_network_lease(f->dir, "lan", "db", &ip, &e), 0);
	assert_int_equal(gw_network_load(f->dir, "lan", &n, &e), 0);
	assert_int_equal(n.gateway, 0x0a5900fe);
	assert_int_equal(gw_network_load(f->dir, "nope", &n, &e), -ENOENT);
	assert_string_equal(e.msg, "no such network: nope");
	assert_int_equal(gw_network_load(f->dir, "../lan", &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bad network name"));
}

static int collect(const struct gw_network *n, void *opaque)
{
	strcat(opaque, n->name);
	strcat(opaque, " ");
	return 0;
}

static void test_each(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	char names[256] = "";
	assert_int_equal(gw_network_each(f->dir, collect, names, &e), 0); /* no networks/ yet */
	assert_string_equal(names, "");
	write_record(f->dir, "tiny", BR_TINY, "10.1.0.0/29", "10.1.0.1", "{}");
	write_record(f->dir, "lan", BR_LAN, "10.89.0.0/24", "10.89.0.1", "{}");
	write_text(f->dir, "README", "not a record");
	write_text(f->dir, "Bad.json", "{}"); /* no valid network name: not ours */
	assert_int_equal(gw_network_each(f->dir, collect, names, &e), 0);
	assert_string_equal(names, "lan tiny ");
}

static void test_corrupt_records(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "{\"name\":\"lan\"", "not JSON" },
		{ "[]", "not a JSON object" },
		{ "{\"name\":\"other\"}", "\"name\" is not \"lan\"" },
		{ "{\"name\":\"lan\",\"bridge\":\"eth0\"}", "\"bridge\" is not \"" BR_LAN "\"" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.1/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{}}", "not a network address" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.90.0.1\",\"nat\":true,\"leases\":{}}",
		  "gateway 10.90.0.1 is outside network lan's subnet 10.89.0.0/24" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/31\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{}}", "from /8 to /30" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":1,\"leases\":{}}", "\"nat\" must be" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true}", "\"leases\" must be an object" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{\"a\":\"10.89.0.2\","
		  "\"b\":\"10.89.0.2\"}}", "address 10.89.0.2 is leased twice" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{\"a\":\"10.89.0.1\"}}",
		  "lease of a: the gateway's address" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{\"a\":\"10.89.0.255\"}}",
		  "lease of a: address 10.89.0.255 is the broadcast address" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{\"../x\":\"10.89.0.3\"}}",
		  "lease for a bad container name" },
		{ "{\"name\":\"lan\",\"bridge\":\"" BR_LAN "\",\"subnet\":\"10.89.0.0/24\","
		  "\"gateway\":\"10.89.0.1\",\"nat\":true,\"leases\":{\"a\":7}}",
		  "lease of a: not an IPv4 address" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct gw_network n;
		struct gw_err e = { 0 };
		uint32_t ip = 0;
		write_text(f->dir, "lan.json", bad[i].text);
		assert_int_equal(gw_network_load(f->dir, "lan", &n, &e), -EINVAL);
		if (!strstr(e.msg, "/networks/lan.json is corrupt: ") || !strstr(e.msg, bad[i].why))
			fail_msg("record %zu: [%s] does not say [%s]", i, e.msg, bad[i].why);
		assert_int_equal(gw_network_lease(f->dir, "lan", "web", &ip, &e), -EINVAL);
		assert_int_equal(gw_network_remove(f->dir, "lan", &e), -EINVAL);
	}
}

static void test_ipam(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	uint32_t ip;
	char name[16], a[16], want[24];
	/* 10.1.0.0/29: .1 the gateway, .2 to .6 for containers, .7 the broadcast */
	write_record(f->dir, "tiny", BR_TINY, "10.1.0.0/29", "10.1.0.1", "{}");
	for (int i = 2; i <= 6; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ip = 0;
		assert_int_equal(gw_network_lease(f->dir, "tiny", name, &ip, &e), 0);
		snprintf(want, sizeof(want), "10.1.0.%d", i);
		assert_string_equal(gw_fmt_ipv4(ip, a), want);
	}
	ip = 0;
	assert_int_equal(gw_network_lease(f->dir, "tiny", "c7", &ip, &e), -ENOSPC);
	assert_string_equal(e.msg, "network tiny has no free address (5 leased)");
	ip = 0; /* a second lease: the first */
	assert_int_equal(gw_network_lease(f->dir, "tiny", "c4", &ip, &e), 0);
	assert_int_equal(ip, 0x0a010004);
	assert_int_equal(gw_network_leases(f->dir, "tiny", &e), 5);
	/* release: idempotent; the address goes to the next asker */
	assert_int_equal(gw_network_release(f->dir, "tiny", "c3", &e), 0);
	assert_int_equal(gw_network_release(f->dir, "tiny", "c3", &e), 0);
	assert_int_equal(gw_network_leases(f->dir, "tiny", &e), 4);
	ip = 0;
	assert_int_equal(gw_network_lease(f->dir, "tiny", "new", &ip, &e), 0);
	assert_int_equal(ip, 0x0a010003);
	assert_int_equal(gw_network_release(f->dir, "nope", "c3", &e), -ENOENT);
}

static void test_ipam_explicit(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	uint32_t ip;
	write_record(f->dir, "lan", BR_LAN, "10.89.0.0/24", "10.89.0.2", "{}");
	static const struct {
		const char *ip, *why;
	} bad[] = {
		{ "10.89.1.5", "address 10.89.1.5 is outside network lan's subnet 10.89.0.0/24" },
		{ "10.89.0.2", "address 10.89.0.2 is network lan's gateway" },
		{ "10.89.0.0", "address 10.89.0.0 is the network address of network lan's subnet" },
		{ "10.89.0.255", "address 10.89.0.255 is the broadcast address of network lan's" },
		{ "10.89.0.9", "address 10.89.0.9 is held by container web on network lan" },
	};
	gw_parse_ipv4("10.89.0.9", &ip, &e);
	assert_int_equal(gw_network_lease(f->dir, "lan", "web", &ip, &e), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		gw_parse_ipv4(bad[i].ip, &ip, &e);
		assert_true(gw_network_lease(f->dir, "lan", "db", &ip, &e) < 0);
		if (!strstr(e.msg, bad[i].why))
			fail_msg("%s: [%s] does not say [%s]", bad[i].ip, e.msg, bad[i].why);
	}
	gw_parse_ipv4("10.89.0.10", &ip, &e); /* web holds .9 already */
	assert_int_equal(gw_network_lease(f->dir, "lan", "web", &ip, &e), -EEXIST);
	ip = 0; /* the gateway is .2 here: the next free are .1, then .3 */
	assert_int_equal(gw_network_lease(f->dir, "lan", "db", &ip, &e), 0);
	assert_int_equal(ip, 0x0a590001);
	ip = 0;
	assert_int_equal(gw_network_lease(f->dir, "lan", "db2", &ip, &e), 0);
	assert_int_equal(ip, 0x0a590003);
	assert_int_equal(gw_network_lease(f->dir, "lan", "bad/name", &ip, &e), -EINVAL);
	assert_int_equal(gw_network_leases(f->dir, "lan", &e), 3);
}

/* ---- the kernel side: root, in the test's own network namespace ---- */

/* the command's output (sh -c) holds needle */
/* a scratch root and a fresh network namespace: what a test made there vanishes with it */
static int setup_netns(void **state)
{
	if (in_own_netns && unshare(CLONE_NEWNET) < 0)
		return -1;
	return setup(state);
}

static int output_has(const char *cmd, const char *needle)
{
	char line[512];
	int found = 0;
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		found |= strstr(line, needle) != NULL;
	pclose(p);
	return found;
}

static int exists(const char *root, const char *file)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/networks/%s", root, file);
	return access(path, F_OK) == 0;
}

/* create name with subnet, gateway 0 (the first address), NAT */
static int create(const char *root, const char *name, const char *subnet, struct gw_err *e)
{
	struct gw_network n = { .nat = 1 };
	snprintf(n.name, sizeof(n.name), "%s", name);
	assert_int_equal(gw_parse_cidr(subnet, &n.subnet, &n.prefix, e), 0);
	return gw_network_create(root, &n, e);
}

static void test_create_refusals(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	if (!in_own_netns)
		skip();
	assert_int_equal(create(f->dir, "lan", "10.89.0.0/24", &e), 0);
	assert_int_equal(create(f->dir, "other", "10.89.0.128/25", &e), -EEXIST);
	assert_string_equal(e.msg, "subnet 10.89.0.128/25 overlaps network \"lan\" (10.89.0.0/24)");
	assert_int_equal(create(f->dir, "other", "10.0.0.0/8", &e), -EEXIST);
	assert_int_equal(create(f->dir, "lan", "10.90.0.0/24", &e), -EEXIST);
	assert_string_equal(e.msg, "network lan already exists");
	assert_int_equal(system("ip link add gwroute0 type bridge && "
				"ip addr add 10.70.0.1/16 dev gwroute0 && ip link set gwroute0 up"), 0);
	assert_int_equal(create(f->dir, "other", "10.70.5.0/24", &e), -EEXIST);
	assert_string_equal(e.msg, "subnet 10.70.5.0/24 overlaps the host's route 10.70.0.0/16 "
				   "dev gwroute0");
	assert_int_equal(create(f->dir, "other", "10.71.0.0/31", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "the prefix must be from /8 to /30"));
	assert_int_equal(create(f->dir, "Other", "10.71.0.0/24", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bad network name \"Other\""));
	struct gw_network n = { .name = "other", .nat = 1 };
	gw_parse_cidr("10.71.0.0/24", &n.subnet, &n.prefix, &e);
	gw_parse_ipv4("10.72.0.1", &n.gateway, &e);
	assert_int_equal(gw_network_create(f->dir, &n, &e), -EINVAL);
	assert_string_equal(e.msg, "gateway 10.72.0.1 is outside network other's subnet 10.71.0.0/24");
	/* a failure half-way (no nft to run) takes back what was made */
	char *path = strdup(getenv("PATH"));
	setenv("PATH", "/nonexistent", 1);
	int r = create(f->dir, "other", "10.71.0.0/24", &e);
	setenv("PATH", path, 1);
	free(path);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(e.msg, "network other: make network other's nftables rules"));
	assert_false(exists(f->dir, "other.json"));
	assert_int_equal(if_nametoindex("gw-d9298a10"), 0);
}

static void test_create_remove(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	uint32_t ip = 0;
	if (!in_own_netns)
		skip();
	assert_int_equal(create(f->dir, "lan", "10.89.0.0/24", &e), 0);
	assert_true(if_nametoindex(BR_LAN) > 0);
	assert_true(output_has("ip -4 -o addr show dev " BR_LAN, "inet 10.89.0.1/24"));
	assert_true(output_has("nft list table inet godwit",
			       "ip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 masquerade"));
	assert_true(output_has("cat /proc/sys/net/ipv4/ip_forward", "1"));
	struct gw_network n;
	assert_int_equal(gw_network_load(f->dir, "lan", &n, &e), 0);
	assert_int_equal(gw_network_up(&n, &e), 0); /* again: nothing changes */
	assert_int_equal(gw_network_lease(f->dir, "lan", "web", &ip, &e), 0);
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), -EBUSY);
	assert_string_equal(e.msg, "network lan has 1 container: remove it first");
	assert_int_equal(gw_network_release(f->dir, "lan", "web", &e), 0);
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), 0);
	assert_int_equal(if_nametoindex(BR_LAN), 0);
	assert_false(output_has("nft list table inet godwit", BR_LAN));
	assert_false(exists(f->dir, "lan.json"));
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), -ENOENT);
}

static void test_tap(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	char tap[GW_IFNAME_MAX], cmd[128];
	if (!in_own_netns || access("/dev/net/tun", R_OK | W_OK) != 0)
		skip();
	assert_int_equal(create(f->dir, "lan", "10.89.0.0/24", &e), 0);
	gw_tap_name(f->dir, "web", tap);
	assert_int_equal(gw_tap_create(tap, BR_LAN, 0, &e), 0);
	assert_int_equal(gw_tap_create(tap, BR_LAN, 0, &e), 0); /* idempotent */
	snprintf(cmd, sizeof(cmd), "ip -o link show dev %s", tap);
	assert_true(output_has(cmd, "master " BR_LAN));
	assert_true(output_has(cmd, ",UP"));
	/* sealed (a migrating container's until COMMIT): on the bridge, down; then up */
	assert_int_equal(gw_tap_delete(tap, &e), 0);
	assert_int_equal(gw_tap_create(tap, BR_LAN, 1, &e), 0);
	assert_true(output_has(cmd, "master " BR_LAN));
	assert_false(output_has(cmd, ",UP"));
	assert_int_equal(gw_tap_unseal(tap, &e), 0);
	assert_true(output_has(cmd, ",UP"));
	assert_int_equal(gw_tap_unseal("eth0", &e), -EINVAL);
	assert_int_equal(gw_tap_create(tap, "gw-00000000", 0, &e), -ENODEV);
	assert_int_equal(gw_tap_delete(tap, &e), 0);
	assert_int_equal(if_nametoindex(tap), 0);
	assert_int_equal(gw_tap_delete(tap, &e), 0);
	assert_int_equal(gw_tap_delete("eth0", &e), -EINVAL);
	assert_int_equal(gw_tap_create("eth0", BR_LAN, 0, &e), -EINVAL);
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), 0);
}

/* a NAT network's bridge has the MAC its name, subnet and gateway give (the same on every
 * host); an uplink network's bridge enslaves the uplink and takes no address */
static void test_uplink(void **state)
{
	struct fx *f = *state;
	struct gw_err e = { 0 };
	if (!in_own_netns)
		skip();
	char mac1[32] = "", mac2[32] = "";
	FILE *p;
	assert_int_equal(create(f->dir, "lan", "10.89.0.0/24", &e), 0);
	assert_non_null(p = popen("ip -o link show dev " BR_LAN " | grep -o 'link/ether [0-9a-f:]*'", "r"));
	assert_non_null(fgets(mac1, sizeof(mac1), p));
	pclose(p);
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), 0);
	assert_int_equal(create(f->dir, "lan", "10.89.0.0/24", &e), 0);
	assert_non_null(p = popen("ip -o link show dev " BR_LAN " | grep -o 'link/ether [0-9a-f:]*'", "r"));
	assert_non_null(fgets(mac2, sizeof(mac2), p));
	pclose(p);
	assert_string_equal(mac1, mac2);
	assert_int_equal(strncmp(mac1, "link/ether 02:", 14), 0); /* locally administered */
	assert_int_equal(system("ip link add gwup0 type veth peer name gwup1"), 0);
	struct gw_network n = { .name = "seg", .uplink = "gwup0" };
	gw_parse_cidr("10.90.0.0/24", &n.subnet, &n.prefix, &e);
	gw_parse_ipv4("10.90.0.254", &n.gateway, &e);
	n.nat = 1;
	assert_int_equal(gw_network_create(f->dir, &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "the host does no NAT"));
	n.nat = 0;
	strcpy(n.uplink, "gwnone9");
	assert_int_equal(gw_network_create(f->dir, &n, &e), -ENODEV);
	assert_string_equal(e.msg, "uplink gwnone9: this host has no such interface");
	strcpy(n.uplink, BR_LAN);
	assert_int_equal(gw_network_create(f->dir, &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "one of godwit's own"));
	strcpy(n.uplink, "gwup0");
	assert_int_equal(gw_network_create(f->dir, &n, &e), 0);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "ip -o link show dev gwup0");
	assert_true(output_has(cmd, "master "));
	assert_true(output_has(cmd, n.bridge));
	snprintf(cmd, sizeof(cmd), "ip -4 -o addr show dev %s", n.bridge);
	assert_false(output_has(cmd, "inet"));
	struct gw_network back;
	assert_int_equal(gw_network_load(f->dir, "seg", &back, &e), 0);
	assert_string_equal(back.uplink, "gwup0");
	assert_int_equal(back.nat, 0);
	struct gw_network twice = { .name = "seg2", .uplink = "gwup0" };
	gw_parse_cidr("10.91.0.0/24", &twice.subnet, &twice.prefix, &e);
	assert_int_equal(gw_network_create(f->dir, &twice, &e), -EEXIST);
	assert_string_equal(e.msg, "uplink gwup0 is network \"seg\"'s already");
	assert_int_equal(gw_network_remove(f->dir, "seg", &e), 0);
	assert_false(output_has("ip -o link show dev gwup0", "master "));
	assert_int_equal(gw_network_remove(f->dir, "lan", &e), 0);
	assert_int_equal(system("ip link del gwup0"), 0);
}

int main(void)
{
	/* a network namespace of our own (each kernel test takes a fresh one): what they make
	 * never touches the host's network, and vanishes with them */
	in_own_netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ports),
		cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipam_explicit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refusals, setup_netns, teardown),
		cmocka_unit_test_setup_teardown(test_create_remove, setup_netns, teardown),
		cmocka_unit_test_setup_teardown(test_tap, setup_netns, teardown),
		cmocka_unit_test_setup_teardown(test_uplink, setup_netns, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
