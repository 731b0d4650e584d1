/* The migration engine: the two ends of a migration and the snapshot path, as the shim runs
 * them (src/shim/mig_*.c; the wire format, policy and snapshot file format they use are the
 * pure layer below, src/migproto/).
 * Each runs as a job of the shim that owns the container (job.h): its waits are turns of the
 * shim's event loop, which serves the control API and the agent link meanwhile. */
#ifndef GODWIT_MIGRATE_H
#define GODWIT_MIGRATE_H

#include <json-c/json.h>

#include "shim.h"
#include "godwit/hv_vm.h"
#include "godwit/migproto.h"

/* Source: move ct to args.uri (live pre-copy, or offline when args.offline). Progress events
 * go to cl. On success *result holds the figures and the container is `migrated`; on failure
 * before the commit the source runs on as before. */
int mig_source_run(struct container *ct, struct shim_client *cl, json_object *args,
		   json_object **result, struct gw_err *err);

/* Destination: start the job that accepts one migration on listen_fd (closed when it ends)
 * into ct (state incoming). On success the container runs here; on failure nothing of it is
 * left but its record: ct->incoming_failed is set and the loop ends (shim_main removes it). */
int mig_dest_start(struct container *ct, int listen_fd, struct gw_err *err);

/* Snapshot: write ct's complete state to path (pause, write, resume; stop instead when
 * stop_after). */
int mig_snapshot(struct container *ct, const char *path, int stop_after, const char *key_file,
		 json_object **result,
		 struct gw_err *err);

/* Restore: start ct's VM from the QEMU state in state_path with the saved agent link. */
int mig_restore_vm(struct container *ct, const char *state_path, const char *link_path,
		   struct gw_err *err);

/* Shared by the ends: wait for QEMU's migration status (*status) to leave the active states:
 * completed, failed (err says why, when QEMU does) or cancelled. Polls query-migrate, woken
 * early by QEMU's MIGRATION events. */
int mig_wait_qemu(struct container *ct, int timeout_ms, enum hv_mig_status *status,
		  struct gw_err *err);
/* The same, also settling on the status `also` (e.g. HV_MIG_POSTCOPY_ACTIVE; HV_MIG_NONE:
 * none). */
int mig_wait_qemu_for(struct container *ct, int timeout_ms, enum hv_mig_status also,
		      enum hv_mig_status *status, struct gw_err *err);
/* Every wait of the engine is a wait of its job (job_wait): the shim's loop serves the agent
 * link and the control socket meanwhile. mig_await: until fd (-1: none) is readable or
 * timeout_ms passed. */
void mig_await(struct container *ct, int fd, int timeout_ms);
/* Serve the agent link for ms milliseconds: what the source does between samples of a
 * running migration (mig_await with no fd). */
void mig_pump_agent(struct container *ct, int ms);
/* Wait up to ms for QEMU to say something (a MIGRATION event: a new status; MIGRATION_PASS:
 * a new round); those events are dropped once read (the caller queries what it needs).
 * Polling QEMU less keeps its main loop for the stream. */
void mig_await_qemu(struct container *ct, int ms);
/* While on, every QMP call waits for QEMU's reply as a wait of the job: a slow command
 * (drive-mirror, block-job-cancel) must not stall the container's output. */
void mig_qmp_serve_agent(struct container *ct, int on);
/* A migration connection's messages wait through the job too (mig_conn's wait hook). */
void mig_conn_in_job(struct container *ct, struct mig_conn *c);
/* Connect to uri (tcp:HOST:PORT, 10 s at most) as a wait of the job; the socket tuned. */
int mig_connect(struct container *ct, const char *uri, struct gw_err *err);
/* Wait until listen_fd has a connection to accept (1), timeout_ms passed (0; < 0: no limit)
 * or SIGTERM/SIGINT came (-EINTR: `rm -f`). */
int mig_await_peer(struct container *ct, int listen_fd, int timeout_ms, struct gw_err *err);
/* With GODWIT_MIG_TRACE set, log a migration step with the wall-clock time to the shim's
 * log: how the hand-over's pause splits between the steps. */
void mig_trace(const char *what);

/* SO_SNDBUF/SO_RCVBUF of a migration connection (the kernel doubles it) */
#define MIG_SOCK_BUF (256 * 1024)
/* mig_qemu_stream flag: resume a paused post-copy (HV_MIG_OUT only) */
#define MIG_STREAM_RESUME 2
/* Hand fd to QEMU as "mig" (getfd; QEMU gets its own copy) and start its side of the
 * migration in direction dir (hv_mig_start: migrate, migrate-incoming or migrate-recover)
 * with uri fd:mig. */
int mig_qemu_stream(struct container *ct, enum hv_mig_dir dir, int fd, int flags,
		    struct gw_err *err);
/* A move's QEMU migration capabilities travel in CONFIG's "caps", {"name": bool} with QEMU's
 * names (hv_mig_cap_name): the source sends the list it sets (mig_caps_to_json), the
 * destination sets the same before migrate-incoming (mig_set_caps: anything but a boolean
 * for one of the capabilities a move may use is refused, nothing set). */
json_object *mig_caps_to_json(const struct hv_mig_cap_state *caps, size_t n);
int mig_set_caps(struct container *ct, json_object *caps, struct gw_err *err);
/* Replace ROOT/containers/NAME/migration.json (what `migrate --status` reads) with d. */
void mig_publish_status(struct container *ct, json_object *d);
/* Post-copy's end game (recover.c): wait until every page has crossed; if the link breaks
 * (QEMU: postcopy-paused) say so in `ps`/`migrate --status` and take the new connection
 * `migrate --recover` brings, admitted by the move's token. uri is the destination's address
 * (source); listen_fd is the incoming listener, kept open until the end (destination). */
int mig_src_postcopy_finish(struct container *ct, struct mig_conn *ctl, const char *token,
			    struct gw_err *err);
int mig_dst_postcopy_finish(struct container *ct, int listen_fd, const char *token,
			    struct gw_err *err);
/* A move's further connections, admitted by its token (docs/migration-protocol.md): the
 * source opens one, saying CONFIG {kind: token}; the destination accepts it (waits at most
 * timeout_ms; SIGTERM/SIGINT end the wait), turning away anything else. Kinds: a post-copy
 * move's control connection, and in a move inside TLS the connection QEMU's stream takes
 * (its own TLS), so that the first stays godwit's. */
#define MIG_CONN_CONTROL "control_for"
#define MIG_CONN_DATA "data_for"
int mig_open_control(struct container *ct, const char *uri, const char *kind,
		     const char *token, struct mig_conn *cc, struct gw_err *err);
int mig_accept_control(struct container *ct, int listen_fd, const char *kind, const char *token,
		       int timeout_ms, struct mig_conn *cc, struct gw_err *err);
/* The same for n connections, each handed to on_admit (its fd then the callee's) as soon as
 * it is admitted, before the next is taken; an error from on_admit ends the wait. */
typedef int (*mig_admitted_fn)(void *arg, struct mig_conn *cc, struct gw_err *err);
int mig_accept_each(struct container *ct, int listen_fd, const char *kind, const char *token,
		    int timeout_ms, int n, mig_admitted_fn on_admit, void *arg,
		    struct gw_err *err);

/* QEMU's RAM channels (multifd, docs/migration-protocol.md "Channels"; mig_channels.c,
 * mig_relay.c). QEMU opens them itself to a socket address: each end's QEMU talks to a unix
 * socket in its vm/ directory, and the shim relays each of its connections over one more
 * connection of the move (MIG_CONN_DATA, admitted by the token). The source starts QEMU's
 * migrate to its socket and opens one connection per connection QEMU makes (n + 1: the main
 * channel and n multifd channels); the destination starts migrate-incoming on its socket and
 * connects each admitted connection to it. mig_channels_stop ends the relays (the source
 * once the destination has everything: DONE); ch->n still says how many there were. */
#define MIG_CHANNELS_MAX 8
struct mig_relay;
int mig_relay_start(int a, int b, struct mig_relay **out, struct gw_err *err);
void mig_relay_stop(struct mig_relay *r);
struct mig_channels {
	int n;			/* QEMU's connections relayed (kept after the stop) */
	struct mig_relay *relay[MIG_CHANNELS_MAX + 1];
	char *path;
};
int mig_src_channels(struct container *ct, const char *uri, const char *token, int channels,
		     struct mig_channels *ch, struct gw_err *err);
int mig_dst_channels(struct container *ct, int listen_fd, const char *token, int channels,
		     struct mig_channels *ch, struct gw_err *err);
void mig_channels_stop(struct mig_channels *ch);
/* mig_tls.c: a move inside TLS (docs/security.md), when ct->tls_dir is set. mig_tls_start:
 * the handshake on mc's connection (the source passes the destination's host, checked in
 * its certificate; the destination NULL), after which mc's messages go through the session
 * in *t (mig_tls_end frees it). mig_tls_qemu: QEMU's credentials for its end and its
 * stream's use of them (host as above); a plain move turns the stream's TLS off, since a
 * QEMU keeps its parameters from an earlier move. */
struct mig_tls {
	struct ssl_ctx_st *ctx;
	struct ssl_st *ssl;
};
int mig_tls_start(struct container *ct, struct mig_conn *mc, const char *host,
		  struct mig_tls *t, struct gw_err *err);
void mig_tls_end(struct mig_tls *t);
int mig_tls_qemu(struct container *ct, const char *host, struct gw_err *err);
/* Keepalive and user timeout on a migration socket, so a vanished peer becomes an error. */
void mig_sock_tune(int fd);

/* The disks of a move (mig_qemu.c; docs/migration-protocol.md, "Disks"): disk 0 is the
 * overlay (drive and export MIG_NBD_EXPORT), disk i >= 1 the config's volume i-1 (drive and
 * export "vol<i-1>"). The destination's QEMU exports each (writable) on one fresh port of the
 * address conn_fd was reached at (*port); mig_nbd_stop removes the exports and the server and
 * waits until they are closed (before the guest runs). The source mirrors each into its
 * export (jobs MIG_MIRROR_JOB<i>; the overlay's own blocks, a volume whole), waits until all
 * are ready (in sync, then kept in sync), and once its guest has stopped cancels them
 * (force = 0: each first copies what is left). */
#define MIG_NBD_EXPORT "disk0"
#define MIG_MIRROR_JOB "mig-mirror"
int mig_disk_count(struct container *ct);
/* mig_volumes.c: the source fills CONFIG's disks (mc) with the overlay and its volumes, and
 * drops its volumes once they moved; the destination makes a blank volume of each size
 * CONFIG says (reason "volume-exists" if it has one of that name; ct->vols_made) and drops
 * those it made when the move fails. */
struct mig_config;
int mig_src_volumes(struct container *ct, struct mig_config *mc, struct gw_err *err);
void mig_src_volumes_gone(struct container *ct);
int mig_dst_volumes(struct container *ct, json_object *msg, char *reason, size_t rlen,
		    struct gw_err *err);
void mig_dst_volumes_drop(struct container *ct);
void mig_disk_id(int i, char id[16]);
int mig_nbd_export(struct container *ct, int conn_fd, const char *token, uint16_t *port,
		   struct gw_err *err);
int mig_nbd_stop(struct container *ct, struct gw_err *err);
int mig_mirror_start(struct container *ct, const char *host, uint16_t port, const char *token,
		     struct gw_err *err);
int mig_mirror_wait_ready(struct container *ct, int timeout_ms, struct gw_err *err);
int mig_mirror_cancel(struct container *ct, int force, struct gw_err *err);

#endif
