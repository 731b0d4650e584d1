/* The source end of a move, shared by its three files: mig_source.c (the phases, from
 * connecting to the result, and what undoes each), mig_source_setup.c (the request's options,
 * QEMU's capabilities and parameters, the CONFIG message) and mig_source_stream.c (QEMU's
 * stream steered by the policy and the user until the switch). */
#ifndef GODWIT_MIG_SOURCE_H
#define GODWIT_MIG_SOURCE_H

#include <json-c/json.h>

#include "godwit/hv_vm.h"
#include "godwit/policy.h"
#include "migrate.h"

/* How a live move may use post-copy: never (--no-postcopy, --offline), switch after the first
 * full pass (--postcopy), or when the policy says (the default). Every move carries the disk
 * the same way: mirrored into the destination's NBD export (QEMU 9.1 removed block migration). */
enum src_postcopy { PC_NEVER = 0, PC_AFTER_FIRST_PASS, PC_POLICY };

struct src_opts {
	const char *uri;
	const char *tls_dir;	/* a move inside TLS (docs/security.md); NULL: plain */
	int offline;
	enum src_postcopy postcopy;
	int channels;		/* > 0: QEMU's multifd channels (mig_channels.c); 0: one stream */
	struct pol_targets targets;
};

/* Free-page hints (docs/migration-policy.md): a default move of a VM that has the device and a
 * guest whose vCPUs were mostly idle lately (pol_hints_first) leaves post-copy off, so that
 * QEMU takes the guest's hints. 1 if so, else 0; why says what was seen ("" if nothing). */
int src_hints(struct container *ct, struct src_opts *o, char *why, size_t len);

/* The migrate request's arguments (docs/api.md) into *o. */
int src_parse_opts(struct container *ct, json_object *args, struct src_opts *o,
		   struct gw_err *err);
/* The capabilities and starting parameters of QEMU's migration, from the policy's setup. */
int src_set_caps_and_params(struct container *ct, const struct pol_setup *ps,
			    const struct src_opts *o, struct gw_err *err);
/* CONFIG: the container's config, the move's kind and the capabilities the destination sets. */
json_object *src_config_msg(struct container *ct, const struct src_opts *o,
			    const struct pol_setup *ps);

/* Where QEMU's stream goes: fd (one stream), or with o->channels the channels relayed over
 * connections admitted by token (*ch, mig_channels.c). */
struct src_sink {
	int fd;
	const char *token;
	struct mig_channels *ch;
};
/* Run QEMU's migration into sink and the policy loop until QEMU says completed (0) or, in a
 * post-copy move, postcopy-active (1: the guest has stopped here and runs from the
 * destination's side from now on), or the policy, the user or a failure ends it (<0, QEMU's
 * migration cancelled). *mirroring goes to 0 when the disk mirror ended at pre-switchover;
 * actions collects what was done; *last_q holds the last figures. */
int src_stream(struct container *ct, struct shim_client *cl, const struct src_opts *o,
	       const struct pol_setup *ps, struct pol_state *stp, const struct src_sink *sink,
	       int *mirroring,
	       json_object *actions, struct hv_mig_stats *last_q, struct gw_err *err);

/* Add to a move's "actions" (the result's list of what was done, and when: at_ns since
 * `migrate`) one {at_ms, action, reason}. */
void src_action(json_object *actions, int64_t at_ns, const char *action, const char *reason);

/* Cancel QEMU's migration and wait (at most 10 s) until it has stopped. */
void src_cancel_qemu(struct container *ct);

#endif
