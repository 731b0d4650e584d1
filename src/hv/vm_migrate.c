/* Steering QEMU's migration over QMP (include/godwit/hv_vm.h): its parameters, its start on
 * a URI in either direction, cancel, the switch to post-copy, the go-ahead after
 * pre-switchover, and its events. */
#include <poll.h>
#include <stddef.h>

#include "godwit/util.h"
#include "vm_priv.h"

/* migrate-set-parameters' members in the order they go out (struct hv_mig_params') */
static const struct {
	unsigned bit;
	const char *name;
	size_t off;
} PARAMS[] = {
	{ HV_MIG_P_MAX_BANDWIDTH, "max-bandwidth", offsetof(struct hv_mig_params, max_bandwidth) },
	{ HV_MIG_P_MAX_POSTCOPY_BANDWIDTH, "max-postcopy-bandwidth",
	  offsetof(struct hv_mig_params, max_postcopy_bandwidth) },
	{ HV_MIG_P_DOWNTIME_LIMIT, "downtime-limit",
	  offsetof(struct hv_mig_params, downtime_limit_ms) },
	{ HV_MIG_P_XBZRLE_CACHE_SIZE, "xbzrle-cache-size",
	  offsetof(struct hv_mig_params, xbzrle_cache_size) },
	{ HV_MIG_P_MULTIFD_CHANNELS, "multifd-channels",
	  offsetof(struct hv_mig_params, multifd_channels) },
	{ HV_MIG_P_THROTTLE_TRIGGER_THRESHOLD, "throttle-trigger-threshold",
	  offsetof(struct hv_mig_params, throttle_trigger_threshold) },
	{ HV_MIG_P_CPU_THROTTLE_INITIAL, "cpu-throttle-initial",
	  offsetof(struct hv_mig_params, cpu_throttle_initial) },
	{ HV_MIG_P_CPU_THROTTLE_INCREMENT, "cpu-throttle-increment",
	  offsetof(struct hv_mig_params, cpu_throttle_increment) },
	{ HV_MIG_P_AVAIL_SWITCHOVER_BANDWIDTH, "avail-switchover-bandwidth",
	  offsetof(struct hv_mig_params, avail_switchover_bandwidth) },
};

int hv_mig_set_params(struct qmp *q, const struct hv_mig_params *p, int timeout_ms,
		      struct gw_err *err)
{
	unsigned known = PARAMS[ARRAY_SIZE(PARAMS) - 1].bit * 2 - 1; /* every HV_MIG_P_* bit */
	if (!(p->set & known))
		return gw_err_set(err, EINVAL, "migrate-set-parameters: no parameter set");
	json_object *a = json_object_new_object();
	for (size_t i = 0; i < ARRAY_SIZE(PARAMS); i++) {
		if (!(p->set & PARAMS[i].bit))
			continue;
		int64_t v = *(const int64_t *)((const char *)p + PARAMS[i].off);
		json_object_object_add(a, PARAMS[i].name, json_object_new_int64(v));
	}
	return hv_run(q, "migrate-set-parameters", a, NULL, timeout_ms, err);
}

int hv_mig_start(struct qmp *q, enum hv_mig_dir dir, const char *uri, int resume,
		 int timeout_ms, struct gw_err *err)
{
	static const char *const cmd[] = { [HV_MIG_OUT] = "migrate",
					   [HV_MIG_IN] = "migrate-incoming",
					   [HV_MIG_RECOVER] = "migrate-recover" };
	if ((unsigned)dir >= ARRAY_SIZE(cmd) || (resume && dir != HV_MIG_OUT))
		return gw_err_set(err, EINVAL, "hv_mig_start: bad direction %d%s", (int)dir,
				  resume ? " with resume" : "");
	json_object *a = hv_args_str("uri", uri);
	if (resume)
		json_object_object_add(a, "resume", json_object_new_boolean(1));
	return hv_run(q, cmd[dir], a, NULL, timeout_ms, err);
}

int hv_mig_cancel(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "migrate_cancel", NULL, NULL, timeout_ms, err);
}

int hv_mig_start_postcopy(struct qmp *q, int timeout_ms, struct gw_err *err)
{
	return hv_run(q, "migrate-start-postcopy", NULL, NULL, timeout_ms, err);
}

int hv_mig_continue(struct qmp *q, enum hv_mig_status state, int timeout_ms,
		    struct gw_err *err)
{
	if (state == HV_MIG_NONE || state >= HV_MIG_OTHER)
		return gw_err_set(err, EINVAL, "migrate-continue: no state %d", (int)state);
	return hv_run(q, "migrate-continue", hv_args_str("state", hv_mig_status_name(state)), NULL,
		      timeout_ms, err);
}

/* One of ours already read from the monitor: 0, -ETIMEDOUT for none, or the connection's
 * lasting error. MIGRATION first: a status change matters more than a new round. */
static int take_queued(struct qmp *q, enum hv_mig_event *which, struct gw_err *err)
{
	struct gw_err e = { 0 };
	enum hv_mig_event ev = HV_MIG_EV_MIGRATION;
	int r = qmp_wait_event(q, "MIGRATION", 0, NULL, &e);
	if (r == -ETIMEDOUT) {
		ev = HV_MIG_EV_PASS;
		r = qmp_wait_event(q, "MIGRATION_PASS", 0, NULL, &e);
	}
	if (r == 0 && which)
		*which = ev;
	if (r < 0 && r != -ETIMEDOUT && err)
		*err = e;
	return r;
}

int hv_mig_wait_event(struct qmp *q, int timeout_ms, enum hv_mig_event *which,
		      struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000;
	for (;;) {
		int r = take_queued(q, which, err);
		if (r != -ETIMEDOUT)
			return r;
		int64_t left = deadline - gw_now_mono_ns();
		if (left <= 0)
			return gw_err_set(err, ETIMEDOUT, "qmp: no migration event within %d ms",
					  timeout_ms);
		/* either name may come next, so wait for input, not for one of them */
		struct pollfd pfd = { .fd = qmp_fd(q), .events = POLLIN };
		if (poll(&pfd, 1, (int)((left + 999999) / 1000000)) < 0 && errno != EINTR)
			return gw_err_sys(err, errno, "qmp: poll");
		if (pfd.revents && (r = qmp_pump(q, err)) < 0)
			return r;
	}
}
