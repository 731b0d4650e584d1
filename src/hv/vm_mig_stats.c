/* QEMU's migration status over QMP (include/godwit/hv_vm.h): the MigrationStatus names and
 * query-migrate's reply parsed into struct hv_mig_stats. The reply is QEMU's, so untrusted:
 * each member is taken only with the type QEMU documents, counters only when >= 0, rates only
 * when finite and >= 0, strings cut to their buffers. */
#include <math.h>
#include <string.h>

#include "godwit/util.h"
#include "vm_priv.h"

/* indexed by enum hv_mig_status, up to HV_MIG_OTHER */
static const char *const STATUS_NAMES[] = {
	[HV_MIG_NONE] = "none",
	[HV_MIG_SETUP] = "setup",
	[HV_MIG_CANCELLING] = "cancelling",
	[HV_MIG_CANCELLED] = "cancelled",
	[HV_MIG_ACTIVE] = "active",
	[HV_MIG_POSTCOPY_ACTIVE] = "postcopy-active",
	[HV_MIG_POSTCOPY_PAUSED] = "postcopy-paused",
	[HV_MIG_POSTCOPY_RECOVER_SETUP] = "postcopy-recover-setup",
	[HV_MIG_POSTCOPY_RECOVER] = "postcopy-recover",
	[HV_MIG_COMPLETED] = "completed",
	[HV_MIG_FAILED] = "failed",
	[HV_MIG_COLO] = "colo",
	[HV_MIG_PRE_SWITCHOVER] = "pre-switchover",
	[HV_MIG_DEVICE] = "device",
	[HV_MIG_WAIT_UNPLUG] = "wait-unplug",
	[HV_MIG_OTHER] = "other",
};

const char *hv_mig_status_name(enum hv_mig_status s)
{
	return (unsigned)s < ARRAY_SIZE(STATUS_NAMES) ? STATUS_NAMES[s] : "?";
}

enum hv_mig_status hv_mig_status_from_name(const char *name)
{
	if (!name)
		return HV_MIG_NONE;
	for (unsigned i = 0; i < HV_MIG_OTHER; i++)
		if (!strcmp(name, STATUS_NAMES[i]))
			return (enum hv_mig_status)i;
	return HV_MIG_OTHER;
}

/* o's member k as a counter: an integer >= 0, else 0 */
static uint64_t get_u64(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	int64_t i = json_object_get_int64(v);
	return i > 0 ? (uint64_t)i : 0;
}

/* o's member k as a rate: a finite number >= 0 (QEMU may print a whole one as an integer) */
static double get_rate(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) ||
	    (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)))
		return 0;
	double d = json_object_get_double(v);
	return isfinite(d) && d > 0 ? d : 0;
}

/* o's member k if it is an object, else NULL */
static json_object *get_obj(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_object)
		       ? v : NULL;
}

static void get_str(json_object *o, const char *k, char *buf, size_t len, const char *dflt)
{
	json_object *v;
	int ok = json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string);
	snprintf(buf, len, "%s", ok ? json_object_get_string(v) : dflt);
}

int hv_mig_stats_parse(json_object *ret, struct hv_mig_stats *s, struct gw_err *err)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->status_name, sizeof(s->status_name), "none");
	if (!json_object_is_type(ret, json_type_object))
		return gw_err_set(err, EPROTO, "query-migrate: QEMU's reply is not an object");
	get_str(ret, "status", s->status_name, sizeof(s->status_name), "none");
	/* a name cut to fit, or at a NUL inside it, is no name we know */
	json_object *v = NULL;
	json_object_object_get_ex(ret, "status", &v);
	s->status = json_object_is_type(v, json_type_string) &&
			    (size_t)json_object_get_string_len(v) != strlen(s->status_name)
		? HV_MIG_OTHER : hv_mig_status_from_name(s->status_name);
	get_str(ret, "error-desc", s->error_desc, sizeof(s->error_desc), "");
	s->total_time_ms = get_u64(ret, "total-time");
	s->downtime_ms = get_u64(ret, "downtime");
	json_object *ram = get_obj(ret, "ram"), *xb = get_obj(ret, "xbzrle-cache");
	if (ram) {
		s->has_ram = 1;
		s->transferred = get_u64(ram, "transferred");
		s->remaining = get_u64(ram, "remaining");
		s->total = get_u64(ram, "total");
		s->dirty_sync_count = get_u64(ram, "dirty-sync-count");
		s->postcopy_requests = get_u64(ram, "postcopy-requests");
		s->dirty_pages_rate = get_u64(ram, "dirty-pages-rate");
		s->page_size = get_u64(ram, "page-size");
		s->mbps = get_rate(ram, "mbps");
		/* a double: no overflow, however large QEMU's figures */
		s->dirty_rate = (double)s->dirty_pages_rate *
				(double)(s->page_size ? s->page_size : 4096);
	}
	if (xb) {
		s->has_xbzrle = 1;
		s->xbzrle_encoding_rate = get_rate(xb, "encoding-rate");
		s->xbzrle_cache_miss_rate = get_rate(xb, "cache-miss-rate");
	}
	return 0;
}

int hv_mig_query(struct qmp *q, struct hv_mig_stats *s, int timeout_ms, struct gw_err *err)
{
	json_object *ret = NULL;
	int r = hv_run(q, "query-migrate", NULL, &ret, timeout_ms, err);
	if (r < 0) {
		hv_mig_stats_parse(NULL, s, NULL);
		return r;
	}
	r = hv_mig_stats_parse(ret, s, err);
	json_object_put(ret);
	return r;
}
