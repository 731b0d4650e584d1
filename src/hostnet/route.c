/* The host's IPv4 routes (an RTM_GETROUTE dump of the main table), for the one question a new
 * network asks: does its subnet collide with a network the host already reaches? */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "hostnet_int.h"

struct scan {
	uint32_t subnet;
	int prefix;
	char *found;
	size_t len;
	int hit;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, RTA_MAX) > 0 && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		tb[mnl_attr_get_type(a)] = a; /* the attributes wanted here are all 32 bits */
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct scan *s = data;
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	const struct rtmsg *rm = mnl_nlmsg_get_payload(nlh);
	char net[GW_CIDR_MAX], dev[IF_NAMESIZE] = "?";
	if (s->hit || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rm)) || rm->rtm_family != AF_INET ||
	    rm->rtm_dst_len == 0 || rm->rtm_dst_len > 32) /* default routes reach everything */
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rm), attr_cb, tb);
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rm->rtm_table;
	if (table != RT_TABLE_MAIN || !tb[RTA_DST])
		return MNL_CB_OK;
	uint32_t dst = ntohl(mnl_attr_get_u32(tb[RTA_DST]));
	if (!hn_overlaps(dst, rm->rtm_dst_len, s->subnet, s->prefix))
		return MNL_CB_OK;
	if (tb[RTA_OIF])
		if_indextoname(mnl_attr_get_u32(tb[RTA_OIF]), dev);
	snprintf(s->found, s->len, "%s dev %s", gw_fmt_cidr(dst, rm->rtm_dst_len, net), dev);
	s->hit = 1;
	return MNL_CB_OK;
}

int hn_route_overlap(uint32_t subnet, int prefix, char *found, size_t len, struct gw_err *err)
{
	char buf[256];
	struct scan s = { subnet, prefix, found, len, 0 };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = AF_INET;
	int r = hn_nl_talk(nlh, route_cb, &s, "list the host's routes", err);
	return r < 0 ? r : s.hit;
}
