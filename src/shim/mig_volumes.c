/* A move's volumes (docs/volumes.md, docs/migration-protocol.md "Disks"): the source names
 * each in CONFIG's "disks" with its size; the destination makes a blank volume of that size
 * for each (refusing, before anything else is made, when it has one of that name already),
 * the mirror fills it, and whichever side no longer owns the container drops its copies:
 * the destination on any failure before COMMIT, the source once the move has completed. */
#include <stdio.h>
#include <string.h>

#include "godwit/migproto.h"
#include "godwit/mount.h"
#include "godwit/volume.h"
#include "migrate.h"

int mig_src_volumes(struct container *ct, struct mig_config *mc, struct gw_err *err)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	int n, r = gw_mounts_parse(ct->cfg.volumes, m, &n, err);
	mc->n_disks = 1;
	snprintf(mc->disks[0].id, sizeof(mc->disks[0].id), "%s", MIG_NBD_EXPORT);
	for (int i = 0; r == 0 && i < n; i++) {
		char id[16];
		mig_disk_id(i + 1, id);
		snprintf(mc->disks[i + 1].id, sizeof(mc->disks[i + 1].id), "%s", id);
		if ((r = gw_volume_size(ct->root, m[i].name, &mc->disks[i + 1].size, err)) < 0)
			return gw_err_prefix(err, "volume %s", m[i].name);
		mc->n_disks = i + 2;
	}
	return r;
}

/* delete the config's volumes whose bit is set in which */
static void drop(struct container *ct, unsigned which)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	int n;
	struct gw_err err = { 0 };
	if (gw_mounts_parse(ct->cfg.volumes, m, &n, &err) < 0)
		return;
	for (int i = 0; i < n; i++)
		if ((which & (1u << i)) && gw_volume_delete(ct->root, m[i].name, &err) < 0)
			fprintf(stderr, "shim %s: %s\n", ct->cfg.name, err.msg);
}

void mig_src_volumes_gone(struct container *ct)
{
	drop(ct, ~0u);
}

/* CONFIG's disks must be the overlay and then exactly the config's volumes, in order */
static int check_disks(const struct mig_config *mc, int n, struct gw_err *err)
{
	if (mc->n_disks != 1 + n || strcmp(mc->disks[0].id, MIG_NBD_EXPORT) != 0)
		return gw_err_set(err, EPROTO, "CONFIG: %d disks for %d volumes", mc->n_disks, n);
	for (int i = 1; i <= n; i++) {
		char id[16];
		mig_disk_id(i, id);
		uint64_t sz = mc->disks[i].size;
		if (strcmp(mc->disks[i].id, id) != 0 || sz < GW_VOLUME_SIZE_MIN ||
		    sz > GW_VOLUME_SIZE_MAX || sz % (1ULL << 20))
			return gw_err_set(err, EPROTO, "CONFIG: disk %d is not volume %d of a valid "
					  "size", i, i - 1);
	}
	return 0;
}

int mig_dst_volumes(struct container *ct, json_object *msg, char *reason, size_t rlen,
		    struct gw_err *err)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	struct mig_config mc;
	uint64_t sizes[GW_MOUNTS_MAX];
	int n, r = gw_mounts_parse(ct->cfg.volumes, m, &n, err);
	if (r == 0 && (r = mig_config_from_json(msg, &mc, err)) == 0) {
		if ((r = check_disks(&mc, n, err)) == 0)
			for (int i = 0; i < n; i++)
				sizes[i] = mc.disks[i + 1].size;
		mig_config_free(&mc);
	}
	if (r < 0) {
		snprintf(reason, rlen, "bad-config");
		return r;
	}
	/* all checked before any is made */
	for (int i = 0; i < n; i++) {
		uint64_t size;
		struct gw_err e = { 0 };
		if (gw_volume_size(ct->root, m[i].name, &size, &e) != -ENOENT) {
			snprintf(reason, rlen, "volume-exists");
			return gw_err_set(err, EEXIST, "volume %s exists on this host already",
					  m[i].name);
		}
	}
	for (int i = 0; i < n; i++) {
		if ((r = gw_volume_create(ct->root, m[i].name, sizes[i], 1, err)) < 0) {
			snprintf(reason, rlen, "disk");
			return r;
		}
		ct->vols_made |= 1u << i;
	}
	return 0;
}

void mig_dst_volumes_drop(struct container *ct)
{
	drop(ct, ct->vols_made);
	ct->vols_made = 0;
}
