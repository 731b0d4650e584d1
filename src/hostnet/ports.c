/* Published ports (docs/network.md, "Published ports"): `run -p [HOSTIP:]HOSTPORT:PORT[/udp]`.
 * Three base chains per container in table inet godwit, named after its tap:
 *   pre-TAP  (prerouting, dstnat)  what arrives for a host address and port: DNAT to it
 *   out-TAP  (output, dstnat)      the same for this host's own connections, 127.0.0.1 too
 *   post-TAP (postrouting, srcnat) masquerade what was DNATed from this host's loopback or
 *                                  from the container's own subnet, so the replies come back
 *                                  the way they went
 * and route_localnet on the bridge, which lets a packet from 127.0.0.1 leave by it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/util.h"
#include "hostnet_int.h"

#define TABLE "inet godwit"

static const char *const KINDS[][2] = {
	{ "pre", "type nat hook prerouting priority dstnat" },
	{ "out", "type nat hook output priority -100" },
	{ "post", "type nat hook postrouting priority srcnat" },
};

/* "8080" or "8080-8089" */
static int parse_range(const char *s, size_t len, unsigned *lo, unsigned *hi)
{
	char buf[16], *dash, *end;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strspn(buf, "0123456789-") != len)
		return -1;
	dash = strchr(buf, '-');
	*lo = (unsigned)strtoul(buf, &end, 10);
	*hi = dash ? (unsigned)strtoul(dash + 1, &end, 10) : *lo;
	if (*end || end == buf || (dash && (dash == buf || !dash[1])))
		return -1;
	return *lo >= 1 && *hi <= 65535 && *lo <= *hi ? 0 : -1;
}

int gw_port_parse(const char *spec, struct gw_port *out, size_t max, size_t *n,
		  struct gw_err *err)
{
	char s[96];
	if (strlen(spec) >= sizeof(s))
		return gw_err_set(err, EINVAL, "publish '%.40s...': too long", spec);
	snprintf(s, sizeof(s), "%s", spec);
	int udp = 0;
	char *slash = strchr(s, '/');
	if (slash) {
		if (strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp"))
			return gw_err_set(err, EINVAL, "publish '%s': the protocol is tcp or udp", spec);
		udp = !strcmp(slash + 1, "udp");
		*slash = '\0';
	}
	char *last = strrchr(s, ':'), *first = strchr(s, ':');
	if (!last)
		return gw_err_set(err, EINVAL, "publish '%s': want [HOSTIP:]HOSTPORT:PORT", spec);
	uint32_t ip = 0;
	unsigned hlo, hhi, clo, chi;
	if (first != last) {
		*first = '\0';
		if (gw_parse_ipv4(s, &ip, NULL) < 0)
			return gw_err_set(err, EINVAL, "publish '%s': '%s' is not an IPv4 address",
					  spec, s);
	}
	const char *hp = first != last ? first + 1 : s;
	if (parse_range(hp, (size_t)(last - hp), &hlo, &hhi) < 0 ||
	    parse_range(last + 1, strlen(last + 1), &clo, &chi) < 0)
		return gw_err_set(err, EINVAL, "publish '%s': a port is 1..65535 or a range "
				  "LOW-HIGH", spec);
	if (hhi - hlo != chi - clo)
		return gw_err_set(err, EINVAL, "publish '%s': the two ranges differ in length", spec);
	for (unsigned i = 0; i <= hhi - hlo; i++) {
		if (*n >= max)
			return gw_err_set(err, E2BIG, "more than %zu published ports", max);
		out[(*n)++] = (struct gw_port){ .udp = udp, .host_ip = ip,
						.host_port = (uint16_t)(hlo + i),
						.ct_port = (uint16_t)(clo + i) };
	}
	return 0;
}

void gw_port_fmt(const struct gw_port *p, char buf[GW_PORT_STR_MAX])
{
	char ip[16];
	snprintf(buf, GW_PORT_STR_MAX, "%s:%s:%u:%u", p->udp ? "udp" : "tcp",
		 gw_fmt_ipv4(p->host_ip, ip), p->host_port, p->ct_port);
}

int gw_port_from_str(const char *s, struct gw_port *p, struct gw_err *err)
{
	char proto[4], ip[16];
	unsigned hp, cp;
	char tail;
	if (sscanf(s, "%3[a-z]:%15[0-9.]:%u:%u%c", proto, ip, &hp, &cp, &tail) != 4 ||
	    (strcmp(proto, "tcp") && strcmp(proto, "udp")) || hp < 1 || hp > 65535 || cp < 1 ||
	    cp > 65535 || gw_parse_ipv4(ip, &p->host_ip, NULL) < 0)
		return gw_err_set(err, EINVAL, "published port \"%.40s\" is malformed", s);
	p->udp = !strcmp(proto, "udp");
	p->host_port = (uint16_t)hp;
	p->ct_port = (uint16_t)cp;
	return 0;
}

int gw_port_hold(const struct gw_port *p, struct gw_err *err)
{
	int fd = socket(AF_INET, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return gw_err_sys(err, errno, "socket");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->host_port),
				 .sin_addr.s_addr = htonl(p->host_ip) };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return gw_err_sys(err, e, "port %u/%s is in use on this host", p->host_port,
				  p->udp ? "udp" : "tcp");
	}
	return fd;
}

static void chains_fresh(FILE *f, const char *tap)
{
	for (size_t i = 0; i < ARRAY_SIZE(KINDS); i++) {
		fprintf(f, "add chain " TABLE " %s-%s { %s; policy accept; }\n", KINDS[i][0], tap,
			KINDS[i][1]);
		fprintf(f, "flush chain " TABLE " %s-%s\n", KINDS[i][0], tap);
	}
}

static void dnat_rules(FILE *f, const char *tap, uint32_t ct_ip, const struct gw_port *p)
{
	char hip[16], cip[16], match[48];
	gw_fmt_ipv4(ct_ip, cip);
	if (p->host_ip)
		snprintf(match, sizeof(match), "ip daddr %s", gw_fmt_ipv4(p->host_ip, hip));
	else
		snprintf(match, sizeof(match), "fib daddr type local");
	for (int i = 0; i < 2; i++)
		fprintf(f, "add rule " TABLE " %s-%s %s %s dport %u dnat ip to %s:%u\n",
			KINDS[i][0], tap, match, p->udp ? "udp" : "tcp", p->host_port, cip,
			p->ct_port);
}

/* what the container's chains are made of (NULL ports: removed) */
struct ports_script {
	const char *tap, *bridge;
	uint32_t subnet, ct_ip;
	int prefix;
	const struct gw_port *p;
	size_t n;
};

static void ports_body(FILE *f, const void *arg)
{
	const struct ports_script *ps = arg;
	chains_fresh(f, ps->tap);
	for (size_t i = 0; ps->p && i < ps->n; i++)
		dnat_rules(f, ps->tap, ps->ct_ip, &ps->p[i]);
	if (ps->p) {
		char cip[16], net[GW_CIDR_MAX];
		gw_fmt_ipv4(ps->ct_ip, cip);
		fprintf(f, "add rule " TABLE " post-%s ip saddr { 127.0.0.0/8, %s } ip daddr %s "
			   "ct status dnat masquerade comment \"godwit ports of %s\"\n", ps->tap,
			gw_fmt_cidr(ps->subnet, ps->prefix, net), cip, ps->bridge);
	}
	for (size_t i = 0; !ps->p && i < ARRAY_SIZE(KINDS); i++)
		fprintf(f, "delete chain " TABLE " %s-%s\n", KINDS[i][0], ps->tap);
}

int gw_ports_add(const char *tap, const char *bridge, uint32_t subnet, int prefix,
		 uint32_t ct_ip, const struct gw_port *p, size_t n, struct gw_err *err)
{
	if (!n)
		return 0;
	/* a packet from 127.0.0.1 may leave by the bridge (after the DNAT) */
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/route_localnet", bridge);
	struct ports_script ps = { tap, bridge, subnet, ct_ip, prefix, p, n };
	int r = hn_sysctl_on(path, err);
	if (r == 0 && (r = hn_nft(ports_body, &ps, err)) < 0)
		gw_err_prefix(err, "make the published ports' rules");
	return r;
}

int gw_ports_remove(const char *tap, struct gw_err *err)
{
	struct ports_script ps = { .tap = tap };
	int r = hn_nft(ports_body, &ps, err);
	return r < 0 ? gw_err_prefix(err, "remove the published ports' rules") : 0;
}
