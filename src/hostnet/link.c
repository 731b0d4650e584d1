/* Links and addresses through rtnetlink (libmnl): the bridge of a network, its gateway
 * address, a tap's or an uplink's master, up and down. Each function is one request. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "hostnet_int.h"

#define MSG_MAX 1024 /* the largest request here: a header and three short attributes */

int hn_link_index(const char *ifname)
{
	return (int)if_nametoindex(ifname);
}

/* a link message for index (0: by name, which the caller adds) */
static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, int index)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = index;
	return nlh;
}

/* the index of ifname, or the error "what: no such link" */
static int index_of(const char *ifname, const char *what, struct gw_err *err)
{
	int index = hn_link_index(ifname);
	return index > 0 ? index : gw_err_set(err, ENODEV, "%s: no link %s", what, ifname);
}

int hn_link_bridge_add(const char *ifname, const unsigned char *mac, struct gw_err *err)
{
	char buf[MSG_MAX], what[64];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, info);
	snprintf(what, sizeof(what), "create bridge %s", ifname);
	struct gw_err e = { 0 };
	int r = hn_nl_talk(nlh, NULL, NULL, what, &e);
	if (r < 0 && r != -EEXIST && err)
		*err = e;
	return r;
}

int hn_link_addr_add(const char *ifname, uint32_t addr, int prefix, struct gw_err *err)
{
	char buf[MSG_MAX], what[80], a[GW_CIDR_MAX];
	snprintf(what, sizeof(what), "add address %s to %s", gw_fmt_cidr(addr, prefix, a), ifname);
	int index = index_of(ifname, what, err);
	if (index < 0)
		return index;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)index;
	mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(addr));
	mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(addr));
	mnl_attr_put_u32(nlh, IFA_BROADCAST, htonl(hn_broadcast(addr & hn_mask(prefix), prefix)));
	return hn_nl_talk(nlh, NULL, NULL, what, err);
}

int hn_link_set(const char *ifname, const char *master, int up, struct gw_err *err)
{
	char buf[MSG_MAX], what[64];
	snprintf(what, sizeof(what), "set %s %s%s%s", ifname, up ? "up" : "down",
		 master ? " on " : "", master ? master : "");
	int index = index_of(ifname, what, err), mindex = master ? index_of(master, what, err) : 0;
	if (index < 0 || mindex < 0)
		return index < 0 ? index : mindex;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, index);
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	ifm->ifi_flags = up ? IFF_UP : 0;
	ifm->ifi_change = IFF_UP;
	if (master)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)mindex);
	return hn_nl_talk(nlh, NULL, NULL, what, err);
}

int hn_link_del(const char *ifname, struct gw_err *err)
{
	char buf[MSG_MAX], what[64];
	int index = hn_link_index(ifname);
	if (index <= 0)
		return 0;
	snprintf(what, sizeof(what), "delete link %s", ifname);
	struct gw_err e = { 0 };
	int r = hn_nl_talk(link_msg(buf, RTM_DELLINK, 0, index), NULL, NULL, what, &e);
	if (r == -ENODEV) /* gone meanwhile */
		return 0;
	if (r < 0 && err)
		*err = e;
	return r;
}
