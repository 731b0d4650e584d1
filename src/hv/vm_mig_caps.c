/* QEMU's migration capabilities over QMP (include/godwit/hv_vm.h): their names, setting them
 * from a typed list, and asking which this QEMU has. */
#include <string.h>

#include "godwit/util.h"
#include "vm_priv.h"

/* indexed by enum hv_mig_cap */
static const char *const CAP_NAMES[HV_MIG_CAP_COUNT] = {
	[HV_MIG_CAP_XBZRLE] = "xbzrle",
	[HV_MIG_CAP_AUTO_CONVERGE] = "auto-converge",
	[HV_MIG_CAP_EVENTS] = "events",
	[HV_MIG_CAP_POSTCOPY_RAM] = "postcopy-ram",
	[HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = "pause-before-switchover",
	[HV_MIG_CAP_MAPPED_RAM] = "mapped-ram",
	[HV_MIG_CAP_MULTIFD] = "multifd",
};

const char *hv_mig_cap_name(enum hv_mig_cap c)
{
	return (unsigned)c < HV_MIG_CAP_COUNT ? CAP_NAMES[c] : NULL;
}

int hv_mig_cap_from_name(const char *name, enum hv_mig_cap *c)
{
	for (unsigned i = 0; name && i < HV_MIG_CAP_COUNT; i++)
		if (!strcmp(name, CAP_NAMES[i])) {
			*c = (enum hv_mig_cap)i;
			return 0;
		}
	return -ENOENT;
}

int hv_mig_set_caps(struct qmp *q, const struct hv_mig_cap_state *caps, size_t n,
		    int timeout_ms, struct gw_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (!hv_mig_cap_name(caps[i].cap))
			return gw_err_set(err, EINVAL, "migrate-set-capabilities: no capability %d",
					  (int)caps[i].cap);
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "capability",
				       json_object_new_string(hv_mig_cap_name(caps[i].cap)));
		json_object_object_add(c, "state", json_object_new_boolean(caps[i].on));
		json_object_array_add(arr, c);
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "capabilities", arr);
	return hv_run(q, "migrate-set-capabilities", a, NULL, timeout_ms, err);
}

int hv_mig_query_caps(struct qmp *q, unsigned *present, unsigned *enabled, int timeout_ms,
		      struct gw_err *err)
{
	json_object *ret = NULL;
	*present = 0;
	if (enabled)
		*enabled = 0;
	int r = hv_run(q, "query-migrate-capabilities", NULL, &ret, timeout_ms, err);
	if (r < 0)
		return r;
	size_t n = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(ret, i), *name, *state;
		enum hv_mig_cap c;
		if (!json_object_object_get_ex(e, "capability", &name) ||
		    !json_object_is_type(name, json_type_string) ||
		    hv_mig_cap_from_name(json_object_get_string(name), &c) < 0)
			continue;
		*present |= HV_MIG_CAP_BIT(c);
		if (enabled && json_object_object_get_ex(e, "state", &state) &&
		    json_object_is_type(state, json_type_boolean) && json_object_get_boolean(state))
			*enabled |= HV_MIG_CAP_BIT(c);
	}
	json_object_put(ret);
	return 0;
}
