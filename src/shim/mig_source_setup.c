/* The source's set-up of a move: the request's options, QEMU's migration capabilities and
 * parameters from the policy's setup, and the CONFIG message that tells the destination all
 * of it (docs/migration-protocol.md, "CONFIG"). */
#include <stdio.h>
#include <string.h>

#include "godwit/migproto.h"
#include "mig_source.h"

int src_parse_opts(struct container *ct, json_object *args, struct src_opts *o,
		   struct gw_err *err)
{
	json_object *v;
	memset(o, 0, sizeof(*o));
	pol_targets_default(&o->targets, ct->cfg.mem_bytes);
	if (!args || !json_object_object_get_ex(args, "uri", &v) ||
	    !json_object_is_type(v, json_type_string))
		return gw_err_set(err, EINVAL, "missing \"uri\"");
	o->uri = json_object_get_string(v);
	/* a move inside TLS: the certificates (an absolute path: the CLI made it one) */
	if (json_object_object_get_ex(args, "tls_dir", &v)) {
		if (!json_object_is_type(v, json_type_string) || json_object_get_string(v)[0] != '/' ||
		    json_object_get_string_len(v) > 4000)
			return gw_err_set(err, EINVAL, "\"tls_dir\" must be an absolute path");
		o->tls_dir = json_object_get_string(v);
	}
	if (json_object_object_get_ex(args, "offline", &v))
		o->offline = json_object_get_boolean(v);
	if (json_object_object_get_ex(args, "max_downtime_ms", &v)) {
		int64_t ms = json_object_get_int64(v);
		if (ms < 1 || ms > 60000)
			return gw_err_set(err, EINVAL, "max downtime out of range (1 ms to 60 s)");
		o->targets.max_downtime_ns = ms * 1000000;
	}
	if (json_object_object_get_ex(args, "bandwidth", &v))
		o->targets.bandwidth_cap = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(args, "max_total_s", &v)) {
		int64_t s = json_object_get_int64(v);
		if (s < 1 || s > 86400)
			return gw_err_set(err, EINVAL, "max total time out of range");
		o->targets.max_total_ns = s * 1000000000LL;
	}
	o->postcopy = PC_POLICY;
	if (json_object_object_get_ex(args, "postcopy", &v) && json_object_get_boolean(v))
		o->postcopy = PC_AFTER_FIRST_PASS;
	else if (o->offline || (json_object_object_get_ex(args, "no_postcopy", &v) &&
				json_object_get_boolean(v)))
		o->postcopy = PC_NEVER;
	if (o->postcopy && o->offline)
		return gw_err_set(err, EINVAL, "post-copy is for live moves, not --offline");
	/* QEMU's channels (multifd): QEMU 10.0 takes them without post-copy only */
	if (json_object_object_get_ex(args, "channels", &v)) {
		int64_t n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < 1 || n > MIG_CHANNELS_MAX)
			return gw_err_set(err, EINVAL, "channels out of range (1 to %d)",
					  MIG_CHANNELS_MAX);
		o->channels = n > 1 ? (int)n : 0;
	}
	if (o->channels && o->postcopy == PC_AFTER_FIRST_PASS)
		return gw_err_set(err, EINVAL, "--channels above 1 cannot be used with --postcopy "
					       "(QEMU's multifd and post-copy exclude each other)");
	if (o->channels && o->offline)
		o->channels = 0;
	if (o->channels) { /* QEMU takes multifd without xbzrle and post-copy only */
		o->postcopy = PC_NEVER;
		o->targets.allow_xbzrle = 0;
	}
	/* post-copy needs postcopy-ram on both ends from the start (and the control connection
	 * it brings), so the policy may only switch in a move set up for it */
	o->targets.allow_postcopy = o->postcopy != PC_NEVER;
	return 0;
}

int src_hints(struct container *ct, struct src_opts *o, char *why, size_t len)
{
	why[0] = '\0';
	if (o->postcopy != PC_POLICY || o->offline || o->channels || !ct->cfg.free_page_hints)
		return 0;
	double load = shim_vcpu_load(ct);
	int hints = pol_hints_first(&o->targets, load);
	if (load < 0)
		snprintf(why, len, "how busy the guest's vCPUs were is not known: post-copy stays "
			 "the last step (no free-page hints)");
	else
		snprintf(why, len, "the guest's vCPUs ran %.0f %% of the time lately: %s",
			 load * 100, hints ? "pre-copy skipping its free pages, the throttle as the "
					     "last step (no post-copy)"
					   : "post-copy stays the last step (no free-page hints)");
	if (hints) {
		o->postcopy = PC_NEVER;
		o->targets.allow_postcopy = 0;
	}
	return hints;
}

/* The capabilities the source sets (*caps, MIG_SRC_CAPS of them); CONFIG carries them so the
 * destination sets the same. */
#define MIG_SRC_CAPS 6
static void caps_list(const struct pol_setup *ps, const struct src_opts *o,
		      struct hv_mig_cap_state caps[MIG_SRC_CAPS])
{
	int offline = o->offline, postcopy = o->postcopy != PC_NEVER;
	caps[0] = (struct hv_mig_cap_state){ HV_MIG_CAP_XBZRLE, ps->cap_xbzrle && !offline };
	caps[1] = (struct hv_mig_cap_state){ HV_MIG_CAP_AUTO_CONVERGE,
					     ps->cap_auto_converge && !offline };
	caps[2] = (struct hv_mig_cap_state){ HV_MIG_CAP_EVENTS, 1 };
	caps[3] = (struct hv_mig_cap_state){ HV_MIG_CAP_POSTCOPY_RAM, postcopy && !offline };
	/* every move's disk rides a mirror that must end while the guest is stopped and before
	 * the destination's guest runs: QEMU waits for us in pre-switchover */
	caps[4] = (struct hv_mig_cap_state){ HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER, 1 };
	caps[5] = (struct hv_mig_cap_state){ HV_MIG_CAP_MULTIFD, o->channels > 0 };
}

int src_set_caps_and_params(struct container *ct, const struct pol_setup *ps,
			    const struct src_opts *o, struct gw_err *err)
{
	struct hv_mig_cap_state caps[MIG_SRC_CAPS];
	int postcopy = o->postcopy != PC_NEVER;
	caps_list(ps, o, caps);
	int r = hv_mig_set_caps(ct->qmp, caps, MIG_SRC_CAPS, 5000, err);
	if (r < 0)
		return r;
	/* 0 would mean QEMU's default cap; "uncapped" is the largest value it takes */
	uint64_t bw = ps->max_bandwidth ? ps->max_bandwidth : (uint64_t)INT64_MAX / 2;
	struct hv_mig_params p = {
		.set = HV_MIG_P_MAX_BANDWIDTH | HV_MIG_P_DOWNTIME_LIMIT,
		.max_bandwidth = (int64_t)bw,
		.downtime_limit_ms = (int64_t)ps->downtime_limit_ms,
	};
	/* the user's cap holds after the switch too (QEMU's own default there is none) */
	if (postcopy) {
		p.set |= HV_MIG_P_MAX_POSTCOPY_BANDWIDTH;
		p.max_postcopy_bandwidth = (int64_t)bw;
	}
	if (o->channels) {
		p.set |= HV_MIG_P_MULTIFD_CHANNELS;
		p.multifd_channels = o->channels;
	}
	if (ps->cap_xbzrle && ps->xbzrle_cache_size) {
		p.set |= HV_MIG_P_XBZRLE_CACHE_SIZE;
		p.xbzrle_cache_size = (int64_t)ps->xbzrle_cache_size;
	}
	return hv_mig_set_params(ct->qmp, &p, 5000, err);
}

json_object *src_config_msg(struct container *ct, const struct src_opts *o,
			    const struct pol_setup *ps)
{
	struct mig_config mc = { 0 };
	snprintf(mc.name, sizeof(mc.name), "%s", ct->cfg.name);
	snprintf(mc.image, sizeof(mc.image), "%s", ct->cfg.image_id);
	mc.memory = ct->cfg.mem_bytes;
	mc.cpus = ct->cfg.cpus;
	/* the overlay and the volumes (their sizes checked by src_check) */
	mig_src_volumes(ct, &mc, NULL);
	mc.kind = o->offline ? MIG_KIND_OFFLINE : o->postcopy ? MIG_KIND_POSTCOPY : MIG_KIND_LIVE;
	json_object *j = mig_config_to_json(&mc);
	json_object *c;
	ct_config_to_json(&ct->cfg, &c);
	json_object_object_add(j, "container", c);
	json_object *net = shim_net_config_json(ct);
	if (net)
		json_object_object_add(j, "net", net);
	struct hv_mig_cap_state caps[MIG_SRC_CAPS];
	caps_list(ps, o, caps);
	json_object_object_add(j, "caps", mig_caps_to_json(caps, MIG_SRC_CAPS));
	if (o->channels)
		json_object_object_add(j, "channels", json_object_new_int(o->channels));
	return j;
}
