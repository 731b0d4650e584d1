/* Networks as a whole (include/godwit/hostnet.h): create (checks, record, bridge, rules, all
 * undone on failure), bring up again, remove, list. The networks lock serialises every change
 * of records, so that two creations never take one subnet or name. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/util.h"
#include "hostnet_int.h"

int gw_network_load(const char *root, const char *name, struct gw_network *n,
		    struct gw_err *err)
{
	return hn_record_read(root, name, n, NULL, err);
}

int gw_network_default(const char *root, struct gw_network *n, struct gw_err *err)
{
	int r = gw_network_load(root, GW_NET_DEFAULT, n, err);
	if (r != -ENOENT)
		return r;
	*n = (struct gw_network){ .name = GW_NET_DEFAULT, .subnet = 0x0a580000, .prefix = 16,
				  .gateway = 0x0a580001, .nat = 1 };
	r = gw_network_create(root, n, err);
	if (r == -EEXIST && hn_record_exists(root, GW_NET_DEFAULT, NULL) == 1) /* made meanwhile */
		r = gw_network_load(root, GW_NET_DEFAULT, n, err);
	return r < 0 ? gw_err_prefix(err, "the default network") : 0;
}

/* A NAT network's bridge holds the gateway address, with the MAC every host gives it; an
 * uplink network's holds no address and enslaves the uplink. */
int gw_network_up(const struct gw_network *n, struct gw_err *err)
{
	unsigned char mac[6];
	if (!n->uplink[0])
		hn_bridge_mac(n, mac);
	int r = hn_link_bridge_add(n->bridge, n->uplink[0] ? NULL : mac, err);
	if ((r < 0 && r != -EEXIST) ||
	    (!n->uplink[0] && (r = hn_link_addr_add(n->bridge, n->gateway, n->prefix, err)) < 0) ||
	    (r = hn_link_set(n->bridge, NULL, 1, err)) < 0 ||
	    (n->uplink[0] && (r = hn_link_set(n->uplink, n->bridge, 1, err)) < 0))
		return gw_err_prefix(err, "network %s", n->name);
	if (n->nat && ((r = hn_ip_forward_on(err)) < 0 || (r = hn_nat_add(n, err)) < 0))
		return gw_err_prefix(err, "network %s", n->name);
	return 0;
}

/* rules, bridge (which frees an uplink), record, in that order: a failure stops it, leaving
 * the record for another try (undo: each is tried whatever the others did, the record last) */
static int teardown(const char *root, const struct gw_network *n, int undo, struct gw_err *err)
{
	int r = n->nat ? hn_nat_remove(n, err) : 0;
	if (r < 0 && !undo)
		return r;
	if ((r = hn_link_del(n->bridge, err)) < 0 && !undo)
		return r;
	return hn_record_remove(root, n->name, err);
}

struct overlap {
	const struct gw_network *n;
	struct gw_err *err;
};

static int refuse_overlap(const struct gw_network *o, void *arg)
{
	const struct overlap *ov = arg;
	const struct gw_network *n = ov->n;
	char a[GW_CIDR_MAX], b[GW_CIDR_MAX];
	if (n->uplink[0] && !strcmp(n->uplink, o->uplink))
		return gw_err_set(ov->err, EEXIST, "uplink %s is network \"%s\"'s already",
				  n->uplink, o->name);
	if (!hn_overlaps(n->subnet, n->prefix, o->subnet, o->prefix))
		return 0;
	return gw_err_set(ov->err, EEXIST, "subnet %s overlaps network \"%s\" (%s)",
			  gw_fmt_cidr(n->subnet, n->prefix, a), o->name,
			  gw_fmt_cidr(o->subnet, o->prefix, b));
}

/* what must hold before anything is made: the caller holds the lock */
static int may_create(const char *root, const struct gw_network *n, struct gw_err *err)
{
	char a[GW_CIDR_MAX], route[64];
	int r = hn_record_exists(root, n->name, err);
	if (r != 0)
		return r < 0 ? r : gw_err_set(err, EEXIST, "network %s already exists", n->name);
	struct overlap ov = { n, err };
	if ((r = gw_network_each(root, refuse_overlap, &ov, err)) != 0)
		return r;
	/* with an uplink the host takes no address on the subnet: its routes do not matter */
	if (n->uplink[0] && !hn_link_index(n->uplink))
		return gw_err_set(err, ENODEV, "uplink %s: this host has no such interface",
				  n->uplink);
	if (!n->uplink[0] &&
	    (r = hn_route_overlap(n->subnet, n->prefix, route, sizeof(route), err)) != 0)
		return r < 0 ? r : gw_err_set(err, EEXIST, "subnet %s overlaps the host's route %s",
					     gw_fmt_cidr(n->subnet, n->prefix, a), route);
	if (hn_link_index(n->bridge))
		return gw_err_set(err, EEXIST,
				  "bridge %s (network %s's) already exists: a network of that name "
				  "under another root?", n->bridge, n->name);
	return 0;
}

int gw_network_create(const char *root, struct gw_network *n, struct gw_err *err)
{
	if (!hn_valid_name(n->name))
		return hn_bad_name(n->name, err);
	hn_bridge_name(n->name, n->bridge);
	if (!n->gateway)
		n->gateway = n->subnet + 1;
	int r = hn_network_check(n, err);
	if (r < 0)
		return r;
	cleanup_close int lock = hn_lock(root, err);
	if (lock < 0)
		return lock;
	if ((r = may_create(root, n, err)) < 0 || (r = hn_record_write(root, n, NULL, err)) < 0)
		return r;
	if ((r = gw_network_up(n, err)) < 0)
		teardown(root, n, 1, NULL);
	return r;
}

int gw_network_remove(const char *root, const char *name, struct gw_err *err)
{
	cleanup_json json_object *leases = NULL;
	struct gw_network n;
	cleanup_close int lock = hn_record_lock_read(root, name, &n, &leases, err);
	if (lock < 0)
		return lock;
	int held = json_object_object_length(leases);
	if (held > 0)
		return gw_err_set(err, EBUSY, "network %s has %d container%s: remove %s first", name,
				  held, held == 1 ? "" : "s", held == 1 ? "it" : "them");
	int r = teardown(root, &n, 0, err);
	return r < 0 ? gw_err_prefix(err, "remove network %s", name) : 0;
}

struct names {
	char (*v)[GW_NET_NAME_MAX];
	size_t len, cap;
};

/* a record's name (NAME.json with a valid NAME) into the list; anything else is not ours */
static int add_name(int dfd, const char *entry, void *arg)
{
	struct names *l = arg;
	size_t n = strlen(entry);
	(void)dfd;
	if (n < 6 || n - 5 >= GW_NET_NAME_MAX || strcmp(entry + n - 5, ".json"))
		return 0;
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = reallocarray(l->v, cap, sizeof(*l->v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->len], entry, n - 5);
	l->v[l->len][n - 5] = '\0';
	l->len += hn_valid_name(l->v[l->len]);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int gw_network_each(const char *root, int (*fn)(const struct gw_network *n, void *opaque),
		    void *opaque, struct gw_err *err)
{
	cleanup_free char *dir = gw_strdup_printf("%s/networks", root);
	struct names l = { 0 };
	if (!dir)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = gw_dir_each(AT_FDCWD, dir, add_name, &l, err);
	if (r == -ENOENT) /* no network yet */
		r = 0;
	else if (r == -ENOMEM)
		gw_err_set(err, ENOMEM, "out of memory");
	if (l.len) /* qsort wants an array, even of none */
		qsort(l.v, l.len, sizeof(*l.v), cmp_name);
	for (size_t i = 0; r == 0 && i < l.len; i++) {
		struct gw_network n;
		r = gw_network_load(root, l.v[i], &n, err);
		if (r == 0)
			r = fn(&n, opaque);
		else if (r == -ENOENT) /* removed meanwhile */
			r = 0;
	}
	free(l.v);
	return r;
}
