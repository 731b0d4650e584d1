/* The container's network inside the guest (docs/network.md): the main process's START
 * carries {"net": {"mac", "ip", "prefix", "gateway", "dns": [..], "etc"?}}; before the
 * process starts the agent gives the NIC with that MAC its address, brings it up, routes by the
 * gateway, and writes the container's /etc/resolv.conf and /etc/hosts (unless "etc" is false:
 * godwit-runtime's containers keep the files their bundle brought). Through the kernel's ioctls: the
 * guest has no tools of its own. What comes from the host is still checked: a bad field
 * fails the START with a clear error. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"

struct netcfg {
	const char *mac;
	struct in_addr ip, gw, mask;
	int prefix;
	char dns[3][16];
	int ndns;
	int etc;	/* write /etc/hosts and resolv.conf ("etc": false: the container's own) */
};

static int get_addr(struct json_object *o, const char *key, struct in_addr *a,
		    struct gw_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    inet_pton(AF_INET, json_object_get_string(v), a) != 1)
		return gw_err_set(err, EINVAL, "net: \"%s\" is not an IPv4 address", key);
	return 0;
}

static int parse(struct json_object *o, struct netcfg *c, struct gw_err *err)
{
	struct json_object *v;
	int r;
	if (!json_object_object_get_ex(o, "mac", &v) || !json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != 17)
		return gw_err_set(err, EINVAL, "net: \"mac\" missing or malformed");
	c->mac = json_object_get_string(v);
	if ((r = get_addr(o, "ip", &c->ip, err)) < 0 || (r = get_addr(o, "gateway", &c->gw, err)) < 0)
		return r;
	if (!json_object_object_get_ex(o, "prefix", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) < 8 || json_object_get_int(v) > 30)
		return gw_err_set(err, EINVAL, "net: \"prefix\" must be 8..30");
	c->prefix = json_object_get_int(v);
	c->mask.s_addr = htonl(0xffffffffu << (32 - c->prefix));
	c->etc = !(json_object_object_get_ex(o, "etc", &v) &&
		   json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v));
	if (json_object_object_get_ex(o, "dns", &v) && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n && c->ndns < 3; i++) {
			struct json_object *s = json_object_array_get_idx(v, i);
			struct in_addr a;
			if (json_object_is_type(s, json_type_string) &&
			    inet_pton(AF_INET, json_object_get_string(s), &a) == 1)
				inet_ntop(AF_INET, &a, c->dns[c->ndns++], sizeof(c->dns[0]));
		}
	}
	return 0;
}

/* The interface whose MAC is mac ("eth0" in practice; found by address so that the name the
 * guest kernel picks does not matter). */
static int find_iface(const char *mac, char name[IFNAMSIZ], struct gw_err *err)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	int found = 0;
	while (d && !found && (e = readdir(d))) {
		char path[300], addr[32] = "";
		if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ)
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
		FILE *f = fopen(path, "re");
		if (f && fgets(addr, sizeof(addr), f) && !strncasecmp(addr, mac, 17)) {
			memcpy(name, e->d_name, strlen(e->d_name) + 1); /* < IFNAMSIZ: above */
			found = 1;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found ? 0 : gw_err_set(err, ENODEV, "net: no interface with MAC %s", mac);
}

static int set_sin(int fd, unsigned long req, const char *ifname, struct in_addr a,
		   const char *what, struct gw_err *err)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	sin->sin_family = AF_INET;
	sin->sin_addr = a;
	if (ioctl(fd, req, &ifr) < 0)
		return gw_err_sys(err, errno, "net: %s %s", what, ifname);
	return 0;
}

static int configure(int fd, const char *ifname, const struct netcfg *c, struct gw_err *err)
{
	int r;
	if ((r = set_sin(fd, SIOCSIFADDR, ifname, c->ip, "address", err)) < 0 ||
	    (r = set_sin(fd, SIOCSIFNETMASK, ifname, c->mask, "netmask", err)) < 0)
		return r;
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return gw_err_sys(err, errno, "net: flags of %s", ifname);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return gw_err_sys(err, errno, "net: bring %s up", ifname);
	struct rtentry rt = { 0 };
	struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
	struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
	struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;
	dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
	gw->sin_addr = c->gw;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = (char *)ifname;
	if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		return gw_err_sys(err, errno, "net: default route via the gateway");
	return 0;
}

/* /etc/resolv.conf and /etc/hosts of the container (root: its file system) */
static void write_etc(const char *root, const struct netcfg *c, const char *hostname)
{
	char path[256], ip[16];
	inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
	snprintf(path, sizeof(path), "%s/etc", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/etc/hosts", root);
	FILE *f = fopen(path, "we");
	if (f) {
		fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
		fprintf(f, "%s\t%s\n", ip, hostname ? hostname : "localhost");
		fclose(f);
	}
	if (!c->ndns)
		return;
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
	unlink(path); /* images often hold a symlink there: the container gets a file */
	if ((f = fopen(path, "we"))) {
		for (int i = 0; i < c->ndns; i++)
			fprintf(f, "nameserver %s\n", c->dns[i]);
		fclose(f);
	}
}

int net_setup(const struct agent *a, struct json_object *net, const char *hostname,
	      struct gw_err *err)
{
	struct netcfg c = { 0 };
	char ifname[IFNAMSIZ];
	int r = parse(net, &c, err);
	if (r == 0)
		r = find_iface(c.mac, ifname, err);
	if (r < 0)
		return r;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return gw_err_sys(err, errno, "net: socket");
	r = configure(fd, ifname, &c, err);
	close(fd);
	if (r < 0)
		return r;
	if (c.etc)
		write_etc(a->root, &c, hostname);
	agent_dbg(a, "net: %s up with %s/%d", ifname, inet_ntoa(c.ip), c.prefix);
	return 0;
}
