/* The typed hypervisor API: each QMP command godwit sends to a running QEMU, as a C function
 * (src/hv/vm*.c), the way libvirt's qemuMonitor layer wraps QEMU's monitor. Above src/hv
 * nothing names a QMP command or event: the shim calls these with its container's struct qmp
 * (qmp.h), and scripts/check-layers.sh fails the build on a call of qmp_execute,
 * qmp_execute_with_fd or qmp_wait_event outside src/hv.
 *
 * Common to every function: it sends exactly the one command named in its comment (the event
 * waits send none), waits at most timeout_ms for the reply (<= 0: qmp.c's default, 30 s) while
 * the qmp_set_wait() hook, if any, serves other work, and returns 0 or a negative errno with
 * err (may be NULL) filled: QEMU's error reply is -EREMOTEIO "cmd: Class: desc", a reply
 * without the promised shape -EPROTO, an argument it cannot send -EINVAL (nothing sent).
 * Events that arrive meanwhile stay queued (qmp_next_event). QEMU is untrusted: every field
 * read from a reply is type-checked and bounded, and a field that is absent or of the wrong
 * type reads as 0 / "" / false unless the comment says otherwise. */
#ifndef GODWIT_HV_VM_H
#define GODWIT_HV_VM_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "godwit/err.h"
#include "godwit/qmp.h"

/* ---- The VM's run state (src/hv/vm.c) ---- */

/* "cont": run the guest's CPUs (after -S, "stop", or a completed incoming migration). */
int hv_vm_cont(struct qmp *q, int timeout_ms, struct gw_err *err);
/* "stop": pause them. */
int hv_vm_stop(struct qmp *q, int timeout_ms, struct gw_err *err);
/* "quit": QEMU replies, then exits (the caller reaps the process). */
int hv_vm_quit(struct qmp *q, int timeout_ms, struct gw_err *err);
/* QEMU announces the guest's NIC on its network (RARP, and the guest's own gratuitous ARP
 * where virtio-net offers it) at once and four more times, 350 down to 50 ms apart, so that the
 * segment's switches learn where its MAC went */
int hv_vm_announce(struct qmp *q, int timeout_ms, struct gw_err *err);

#define HV_VM_STATUS_MAX 32
struct hv_vm_status {
	int running;			/* "running": true only for a JSON true */
	char status[HV_VM_STATUS_MAX];	/* QEMU's run state ("running", "paused", "inmigrate"...),
					   cut to fit; "" when absent */
};
/* "query-status" into *st; -EPROTO when the reply is not an object. */
int hv_vm_query_status(struct qmp *q, struct hv_vm_status *st, int timeout_ms,
		       struct gw_err *err);

/* ---- Passing file descriptors (src/hv/vm_fd.c) ---- */

/* "getfd" {fdname} with fd: QEMU keeps its own copy under fdname, for a later "fd:NAME" URI
 * or address (a second getfd of the same name replaces it). */
int hv_vm_getfd(struct qmp *q, const char *fdname, int fd, int timeout_ms, struct gw_err *err);
/* "add-fd" with fd: QEMU puts its copy into a new fd set, whose id (>= 0) *fdset_id gets
 * (untouched on failure); "/dev/fdset/ID" then opens it, with fd's access mode. -EPROTO when
 * the reply has no integer "fdset-id" >= 0. */
int hv_vm_add_fd(struct qmp *q, int fd, int64_t *fdset_id, int timeout_ms, struct gw_err *err);
/* "remove-fd" {fdset-id}: QEMU closes the set's fds once nothing uses them. */
int hv_vm_remove_fd(struct qmp *q, int64_t fdset_id, int timeout_ms, struct gw_err *err);

/* ---- Migration capabilities (src/hv/vm_mig_caps.c) ---- */

/* The migration capabilities godwit uses (QEMU has more; they stay as QEMU set them). */
enum hv_mig_cap {
	HV_MIG_CAP_XBZRLE,
	HV_MIG_CAP_AUTO_CONVERGE,
	HV_MIG_CAP_EVENTS,		/* MIGRATION and MIGRATION_PASS events */
	HV_MIG_CAP_POSTCOPY_RAM,
	HV_MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
	HV_MIG_CAP_MAPPED_RAM,		/* QEMU 9.0 */
	HV_MIG_CAP_MULTIFD,
	HV_MIG_CAP_COUNT
};
#define HV_MIG_CAP_BIT(c) (1u << (c))

/* QEMU's name of c ("xbzrle", "postcopy-ram"...), or NULL for a value outside the enum. It is
 * also the capability's key in a migration's CONFIG "caps" (docs/migration-protocol.md). */
const char *hv_mig_cap_name(enum hv_mig_cap c);
/* The capability QEMU calls name: 0 and *c, or -ENOENT (err untouched) for one not above. */
int hv_mig_cap_from_name(const char *name, enum hv_mig_cap *c);

struct hv_mig_cap_state {
	enum hv_mig_cap cap;
	int on;
};
/* "migrate-set-capabilities" {capabilities: [{capability, state}, ...]}, n entries in the order
 * given (n may be 0); an entry outside the enum: -EINVAL. */
int hv_mig_set_caps(struct qmp *q, const struct hv_mig_cap_state *caps, size_t n,
		    int timeout_ms, struct gw_err *err);
/* "query-migrate-capabilities": *present gets HV_MIG_CAP_BIT(c) for each capability above that
 * this QEMU has, *enabled (may be NULL) for those of them that are on. Entries that name no
 * capability above are skipped; a reply that is not a list has none. */
int hv_mig_query_caps(struct qmp *q, unsigned *present, unsigned *enabled, int timeout_ms,
		      struct gw_err *err);

/* ---- Migration parameters, start, steering (src/hv/vm_migrate.c) ---- */

/* Which members of struct hv_mig_params to send */
enum {
	HV_MIG_P_MAX_BANDWIDTH = 1u << 0,
	HV_MIG_P_MAX_POSTCOPY_BANDWIDTH = 1u << 1,
	HV_MIG_P_DOWNTIME_LIMIT = 1u << 2,
	HV_MIG_P_XBZRLE_CACHE_SIZE = 1u << 3,
	HV_MIG_P_MULTIFD_CHANNELS = 1u << 4,
	HV_MIG_P_THROTTLE_TRIGGER_THRESHOLD = 1u << 5,
	HV_MIG_P_CPU_THROTTLE_INITIAL = 1u << 6,
	HV_MIG_P_CPU_THROTTLE_INCREMENT = 1u << 7,
	HV_MIG_P_AVAIL_SWITCHOVER_BANDWIDTH = 1u << 8,	/* QEMU 8.2 and newer */
};
struct hv_mig_params {
	unsigned set;				/* HV_MIG_P_* of the members below to send */
	int64_t max_bandwidth;			/* bytes/s */
	int64_t max_postcopy_bandwidth;		/* bytes/s */
	int64_t downtime_limit_ms;
	int64_t xbzrle_cache_size;		/* bytes */
	int64_t multifd_channels;
	int64_t throttle_trigger_threshold;	/* percent */
	int64_t cpu_throttle_initial;		/* percent */
	int64_t cpu_throttle_increment;		/* percent */
	int64_t avail_switchover_bandwidth;	/* bytes/s QEMU may count on at the switch-over */
};
/* "migrate-set-parameters" with the members p->set names, in the order of the struct (as
 * integers); none set: -EINVAL. */
int hv_mig_set_params(struct qmp *q, const struct hv_mig_params *p, int timeout_ms,
		      struct gw_err *err);

enum hv_mig_dir {
	HV_MIG_OUT,	/* "migrate": send the state to uri */
	HV_MIG_IN,	/* "migrate-incoming": take it from uri (QEMU ran with -incoming defer) */
	HV_MIG_RECOVER,	/* "migrate-recover": a destination in postcopy-paused listens on uri */
};
/* Start QEMU's side of a migration: the command of dir with {uri} ("fd:NAME" after
 * hv_vm_getfd, "file:/dev/fdset/N,offset=O" after hv_vm_add_fd), plus "resume": true when
 * resume is set (HV_MIG_OUT only, to continue a paused post-copy; else -EINVAL). The reply
 * comes at once: the migration runs on (hv_mig_query, hv_mig_wait_event). */
int hv_mig_start(struct qmp *q, enum hv_mig_dir dir, const char *uri, int resume,
		 int timeout_ms, struct gw_err *err);
/* "migrate_cancel": QEMU cancels an outgoing migration (cancelling, then cancelled). */
int hv_mig_cancel(struct qmp *q, int timeout_ms, struct gw_err *err);
/* "migrate-start-postcopy": the source switches to post-copy (needs postcopy-ram). */
int hv_mig_start_postcopy(struct qmp *q, int timeout_ms, struct gw_err *err);

/* ---- Migration status (src/hv/vm_mig_stats.c) ---- */

/* QEMU's MigrationStatus */
enum hv_mig_status {
	HV_MIG_NONE = 0,	/* no migration yet (query-migrate's reply has no status) */
	HV_MIG_SETUP,
	HV_MIG_CANCELLING,
	HV_MIG_CANCELLED,
	HV_MIG_ACTIVE,
	HV_MIG_POSTCOPY_ACTIVE,
	HV_MIG_POSTCOPY_PAUSED,
	HV_MIG_POSTCOPY_RECOVER_SETUP,
	HV_MIG_POSTCOPY_RECOVER,
	HV_MIG_COMPLETED,
	HV_MIG_FAILED,
	HV_MIG_COLO,
	HV_MIG_PRE_SWITCHOVER,
	HV_MIG_DEVICE,
	HV_MIG_WAIT_UNPLUG,
	HV_MIG_OTHER,		/* a status this list lacks (a newer QEMU): its name is in
				   struct hv_mig_stats.status_name */
};
/* QEMU's name of s ("active", "postcopy-active"...; "other" for HV_MIG_OTHER, "?" outside). */
const char *hv_mig_status_name(enum hv_mig_status s);
/* The status QEMU calls name (HV_MIG_OTHER for one not above; name may be NULL: none). */
enum hv_mig_status hv_mig_status_from_name(const char *name);

/* "migrate-continue" {state}: a migration waiting in state (pre-switchover, with
 * pause-before-switchover on) goes on. */
int hv_mig_continue(struct qmp *q, enum hv_mig_status state, int timeout_ms,
		    struct gw_err *err);

#define HV_MIG_STATUS_NAME_MAX 32
#define HV_MIG_ERROR_MAX 256
/* query-migrate's reply, the figures godwit reads. Counters are QEMU's since the migration
 * began; a negative, fractional or non-number counter reads as 0, a rate as 0.0. */
struct hv_mig_stats {
	enum hv_mig_status status;
	char status_name[HV_MIG_STATUS_NAME_MAX]; /* "status" as QEMU sent it, "none" when absent
						     or not a string; one cut to fit (or at a NUL
						     inside it) is HV_MIG_OTHER */
	char error_desc[HV_MIG_ERROR_MAX];	/* "error-desc" (why it failed; cut), "" if none */
	uint64_t total_time_ms;			/* "total-time" */
	uint64_t downtime_ms;			/* "downtime" (once completed) */
	int has_ram;				/* the "ram" object was there (and an object) */
	uint64_t transferred, remaining, total;	/* ram: bytes */
	uint64_t dirty_sync_count;		/* ram: rounds begun (2 = the first pass is done) */
	uint64_t postcopy_requests;		/* ram: pages the destination asked for */
	uint64_t dirty_pages_rate;		/* ram: pages/s */
	uint64_t page_size;			/* ram: bytes, 0 when absent */
	double mbps;				/* ram: the stream's rate, megabits/s */
	double dirty_rate;			/* bytes/s: dirty_pages_rate * page_size (4096 when
						   page_size is absent) */
	int has_xbzrle;				/* the "xbzrle-cache" object was there */
	double xbzrle_encoding_rate;		/* xbzrle-cache: "encoding-rate" */
	double xbzrle_cache_miss_rate;		/* xbzrle-cache: "cache-miss-rate" */
};
/* "query-migrate" parsed into *s (hv_mig_stats_parse); on failure *s is zeroed ("none"). */
int hv_mig_query(struct qmp *q, struct hv_mig_stats *s, int timeout_ms, struct gw_err *err);
/* The parser alone, for tests and the fuzzer: ret is query-migrate's "return" value; a ret
 * that is not an object is -EPROTO (and *s as for a reply without status). */
int hv_mig_stats_parse(json_object *ret, struct hv_mig_stats *s, struct gw_err *err);

/* ---- Migration events (src/hv/vm_migrate.c; need HV_MIG_CAP_EVENTS) ---- */

enum hv_mig_event {
	HV_MIG_EV_MIGRATION = 1,	/* MIGRATION: the status changed */
	HV_MIG_EV_PASS,			/* MIGRATION_PASS: a new dirty-sync round began */
};
/* Take the oldest queued MIGRATION event, else the oldest MIGRATION_PASS, waiting up to
 * timeout_ms for one to arrive; timeout_ms 0 looks only at what has already been read from the
 * monitor (the socket is not read). 0 and *which (may be NULL), or -ETIMEDOUT; other events stay
 * queued. The event's data is not looked at: the caller queries what it needs. */
int hv_mig_wait_event(struct qmp *q, int timeout_ms, enum hv_mig_event *which,
		      struct gw_err *err);

/* ---- TLS (src/hv/vm_tls.c; docs/security.md) ---- */

/* "object-add" {qom-type: tls-creds-x509, id, dir, endpoint: server|client, verify-peer:
 * true}: QEMU's x509 credentials from dir (QEMU's layout: ca-cert.pem, server-cert.pem,
 * server-key.pem, client-cert.pem, client-key.pem), the peer's certificate always checked
 * against the CA. */
#define HV_TLS_CREDS "gw-tls"
int hv_tls_creds_add(struct qmp *q, const char *id, const char *dir, int server, int timeout_ms,
		     struct gw_err *err);
/* "migrate-set-parameters" {tls-creds, tls-hostname}: QEMU's migration stream runs inside
 * TLS with the credentials tls_creds; the sending end (hostname not NULL) checks that the
 * receiver's certificate names hostname. */
int hv_mig_set_tls(struct qmp *q, const char *tls_creds, const char *hostname, int timeout_ms,
		   struct gw_err *err);
/* "object-del" {id}. */
int hv_object_del(struct qmp *q, const char *id, int timeout_ms, struct gw_err *err);

/* ---- Block devices, NBD exports, block jobs (src/hv/vm_block.c) ---- */

/* "query-block": the name of the node (*node, len bytes) behind device (a `-drive id=` gets a
 * generated one: "#block123"). -ENOENT, err "QEMU has no inserted DEVICE", when no such
 * device has a medium; -EPROTO when its node name does not fit. */
int hv_block_node_of(struct qmp *q, const char *device, char *node, size_t len,
		     int timeout_ms, struct gw_err *err);
/* "nbd-server-start" {addr: {type: fd, data: {str: fdname}}, max-connections, tls-creds}:
 * QEMU's NBD server accepts on the listening socket given earlier as fdname (hv_vm_getfd);
 * with tls_creds (NULL: none; hv_tls_creds_add, server end) only clients that pass TLS. */
int hv_nbd_server_start_fd(struct qmp *q, const char *fdname, int max_connections,
			   const char *tls_creds, int timeout_ms, struct gw_err *err);
/* "nbd-server-stop" (its exports go too, closing asynchronously: hv_block_export_count). */
int hv_nbd_server_stop(struct qmp *q, int timeout_ms, struct gw_err *err);
/* "block-export-add" {type: nbd, id, node-name, name, writable}: node exported as `name`. */
int hv_block_export_add_nbd(struct qmp *q, const char *id, const char *node, const char *name,
			    int writable, int timeout_ms, struct gw_err *err);
/* "block-export-del" {id, mode: "hard" (drop its clients) or "safe"}. */
int hv_block_export_del(struct qmp *q, const char *id, int hard, int timeout_ms,
			struct gw_err *err);
/* "query-block-exports": how many exports exist, closing ones included (a reply that is
 * not a list counts as none). */
int hv_block_export_count(struct qmp *q, size_t *n, int timeout_ms, struct gw_err *err);
/* "blockdev-add" {driver: nbd, node-name, server: {type: inet, host, port: "PORT"}, export,
 * tls-creds, tls-hostname}: a node named node on the NBD export of host:port; with tls_creds
 * (NULL: none; client end) over TLS, the server's certificate checked for host. */
int hv_blockdev_add_nbd(struct qmp *q, const char *node, const char *host, uint16_t port,
			const char *export_name, const char *tls_creds, int timeout_ms,
			struct gw_err *err);
/* "blockdev-del" {node-name}. */
int hv_blockdev_del(struct qmp *q, const char *node, int timeout_ms, struct gw_err *err);

enum hv_mirror_sync { HV_MIRROR_SYNC_TOP, HV_MIRROR_SYNC_FULL };
enum hv_mirror_copy { HV_MIRROR_BACKGROUND, HV_MIRROR_WRITE_BLOCKING };
struct hv_mirror {
	const char *job_id;
	const char *device;		/* the source: a device or node name */
	const char *target;		/* the target node (hv_blockdev_add_nbd) */
	enum hv_mirror_sync sync;	/* "top": only the top image's own blocks; "full" */
	enum hv_mirror_copy copy_mode;	/* "write-blocking": once in sync each guest write
					   reaches both before it completes; "background" */
};
/* "blockdev-mirror" {job-id, device, target, sync, copy-mode}. */
int hv_blockdev_mirror(struct qmp *q, const struct hv_mirror *m, int timeout_ms,
		       struct gw_err *err);
/* "block-job-cancel" {device: job, force}: without force a ready mirror first copies what is
 * left, then ends. */
int hv_block_job_cancel(struct qmp *q, const char *job, int force, int timeout_ms,
			struct gw_err *err);
/* "query-block-jobs": 1 when job (its "device", which is the job id) is ready, 0 when it runs
 * and is not yet, -ENOENT (err untouched) when there is no such job. */
int hv_block_job_ready(struct qmp *q, const char *job, int timeout_ms, struct gw_err *err);

#endif
