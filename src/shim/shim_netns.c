/* godwit-runtime's network (docs/oci-runtime.md, "Networking"): the container was created in a
 * network namespace that someone else set up (podman's netavark or CNI: a veth with the
 * container's address and a default route; published ports DNAT'ed to that address on the
 * host). The VM's NIC takes that interface over, as Kata Containers does: a tap in the same
 * namespace, tc redirecting every frame from the interface to the tap and back, and the guest
 * given the interface's MAC, address, prefix and gateway. Nothing of the namespace's plumbing
 * has to know that a VM answers now. QEMU gets the tap as an open fd (it cannot reach the
 * namespace by name); the shim holds it too, so the tap lives exactly as long as the shim. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/proc.h"
#include "godwit/util.h"
#include "shim.h"

#define NETNS_TAP "gwtap0"

/* the namespace's interface with an IPv4 address (other than lo) */
static int find_if(char name[IFNAMSIZ], struct shim_netns_if *nif, struct gw_err *err)
{
	struct ifaddrs *all;
	if (getifaddrs(&all) < 0)
		return gw_err_sys(err, errno, "list the namespace's interfaces");
	int found = 0;
	for (struct ifaddrs *a = all; a && !found; a = a->ifa_next) {
		if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || (a->ifa_flags & IFF_LOOPBACK) ||
		    !a->ifa_netmask || strlen(a->ifa_name) >= IFNAMSIZ)
			continue;
		uint32_t mask = ntohl(((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr);
		nif->prefix = __builtin_popcount(mask);
		inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, nif->ip,
			  sizeof(nif->ip));
		snprintf(name, IFNAMSIZ, "%s", a->ifa_name);
		found = 1;
	}
	freeifaddrs(all);
	if (!found)
		return gw_err_set(err, ENOENT, "the network namespace has no interface with an IPv4 "
				  "address");
	return 0;
}

/* the default route's gateway through name, from this thread's /proc view of the namespace */
static int find_gateway(const char *name, struct shim_netns_if *nif, struct gw_err *err)
{
	FILE *f = fopen("/proc/thread-self/net/route", "re");
	char line[256], ifn[IFNAMSIZ + 1];
	unsigned dst, gw, flags;
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %x %x %x", ifn, &dst, &gw, &flags) == 4 && dst == 0 &&
		    !strcmp(ifn, name) && gw) {
			struct in_addr a = { .s_addr = gw }; /* the file's hex is in network order */
			inet_ntop(AF_INET, &a, nif->gateway, sizeof(nif->gateway));
			found = 1;
		}
	if (f)
		fclose(f);
	if (!found)
		return gw_err_set(err, ENOENT, "the network namespace has no default route via %s",
				  name);
	return 0;
}

static int if_ioctl(int s, unsigned long req, struct ifreq *ifr, const char *name,
		    struct gw_err *err)
{
	if (ioctl(s, req, ifr) < 0)
		return gw_err_sys(err, errno, "interface %s", name);
	return 0;
}

/* every frame arriving on from leaves by to (tc ingress + mirred, as Kata's "tcfilter") */
static int redirect(char *from, char *to, struct gw_err *err)
{
	char *qdisc[] = { "tc", "qdisc", "replace", "dev", from, "ingress", NULL };
	char *filter[] = { "tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "all",
			   "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to, NULL };
	int r = gw_run(qdisc, err);
	if (r == 0)
		r = gw_run(filter, err);
	return r < 0 ? gw_err_prefix(err, "redirect %s to %s with tc", from, to) : 0;
}

/* Inside the namespace: the interface's addresses, the tap, the redirection both ways. */
static int take_over(struct container *ct, struct gw_err *err)
{
	char name[IFNAMSIZ];
	struct shim_netns_if *nif = &ct->netns_if;
	int r = find_if(name, nif, err);
	if (r == 0)
		r = find_gateway(name, nif, err);
	if (r < 0)
		return r;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return gw_err_sys(err, errno, "socket");
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if ((r = if_ioctl(s, SIOCGIFHWADDR, &ifr, name, err)) == 0) {
		const unsigned char *m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
		snprintf(nif->mac, sizeof(nif->mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
			 m[2], m[3], m[4], m[5]);
		r = if_ioctl(s, SIOCGIFMTU, &ifr, name, err);
		nif->mtu = ifr.ifr_mtu;
	}
	int tap = r == 0 ? open("/dev/net/tun", O_RDWR | O_CLOEXEC) : -1;
	if (r == 0 && tap < 0)
		r = gw_err_sys(err, errno, "open /dev/net/tun");
	struct ifreq t = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	snprintf(t.ifr_name, IFNAMSIZ, "%s", NETNS_TAP);
	if (r == 0 && ioctl(tap, TUNSETIFF, &t) < 0)
		r = gw_err_sys(err, errno, "make the tap %s", NETNS_TAP);
	if (r == 0) {
		t.ifr_mtu = nif->mtu;
		r = if_ioctl(s, SIOCSIFMTU, &t, NETNS_TAP, err);
	}
	if (r == 0 && (r = if_ioctl(s, SIOCGIFFLAGS, &t, NETNS_TAP, err)) == 0) {
		t.ifr_flags |= IFF_UP;
		r = if_ioctl(s, SIOCSIFFLAGS, &t, NETNS_TAP, err);
	}
	close(s);
	/* tc runs in the namespace too: a child starts in its parent thread's */
	if (r == 0)
		r = redirect(name, NETNS_TAP, err);
	if (r == 0)
		r = redirect(NETNS_TAP, name, err);
	if (r < 0) {
		if (tap >= 0)
			close(tap);
		return r;
	}
	ct->netns_tap_fd = tap;
	snprintf(ct->cfg.nic_mac, sizeof(ct->cfg.nic_mac), "%s", nif->mac);
	return 0;
}

int shim_netns_up(struct container *ct, struct gw_err *err)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int ns = open(ct->cfg.netns, O_RDONLY | O_CLOEXEC);
	int r = 0;
	if (self < 0 || ns < 0)
		r = gw_err_sys(err, errno, "open %s", self < 0 ? "this network namespace"
					   : ct->cfg.netns);
	else if (setns(ns, CLONE_NEWNET) < 0)
		r = gw_err_sys(err, errno, "join the network namespace %s", ct->cfg.netns);
	else {
		r = take_over(ct, err);
		/* back: every socket the shim makes from now on is the host's */
		if (setns(self, CLONE_NEWNET) < 0 && r == 0)
			r = gw_err_sys(err, errno, "return from the network namespace %s",
				       ct->cfg.netns);
	}
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	return r < 0 ? gw_err_prefix(err, "network namespace %s", ct->cfg.netns) : 0;
}

json_object *shim_netns_start_json(const struct container *ct)
{
	if (ct->netns_tap_fd < 0)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "mac", json_object_new_string(ct->netns_if.mac));
	json_object_object_add(o, "ip", json_object_new_string(ct->netns_if.ip));
	json_object_object_add(o, "prefix", json_object_new_int(ct->netns_if.prefix));
	json_object_object_add(o, "gateway", json_object_new_string(ct->netns_if.gateway));
	json_object_object_add(o, "dns", json_object_new_array());
	/* the bundle brought /etc/hosts and resolv.conf (podman's): the guest keeps them */
	json_object_object_add(o, "etc", json_object_new_boolean(0));
	return o;
}
