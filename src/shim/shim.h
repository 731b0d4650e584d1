/* The shim's private interface: the one struct container that holds all mutable state of a
 * container (STYLE rule 4), shared by the shim's files: shim.c (setup, event loop, lifecycle),
 * control.c (the control API), agent_link.c (the link to godwit-agent), and the migration
 * engine in mig_*.c (migrate.h). */
#ifndef GODWIT_SHIM_H
#define GODWIT_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "exec_chans.h"
#include "godwit/container.h"
#include "godwit/ctl.h"
#include "godwit/hostnet.h"
#include "godwit/hv.h"
#include "job.h"

#define SHIM_MAX_CLIENTS 32
/* An exec the agent has not answered by then fails (ctl_exec_timeouts): normally it answers
 * in milliseconds, a second or two on a busy TCG guest or around a move. */
#define SHIM_EXEC_START_MS 30000
#define SHIM_MAX_EXECS 64

struct qmp;
struct alink;

struct shim_client {
	int fd;			/* -1 = free slot */
	struct ctl_reader rd;
	int attached;		/* receives the main process's output and exit events */
	int exec_chan;		/* > 0: this client owns that exec session */
	int64_t exec_deadline_ns; /* monotonic: the agent must answer the exec by then (0 = it did) */
	int query_id;		/* a guest-query waits for the agent's ANSWER with this id (0: none) */
	int64_t query_deadline_ns;
};

/* A migration or snapshot runs as a job of the event loop (job.h): `godwit ps`, `exec` and
 * the rest answer while it waits. What they may do depends on what the job does. */
enum shim_access {
	SHIM_OPEN,		/* no job: everything */
	SHIM_EXCLUSIVE,		/* a move or snapshot owns the VM: status and attach only */
	SHIM_LIVE,		/* post-copy's end here: the container runs, all but stop,
				 * migrate and snapshot */
};

/* A move running here as its source takes requests through the control API
 * (control_migrate.c: migrate-cancel, migrate-postcopy-now, migrate-recover); the engine
 * says what it may be asked and acts on what was asked at its next turn. */
struct mig_asks {
	int source;		/* a move of this container runs, from here */
	int capable;		/* it was set up for post-copy (postcopy-ram, control connection) */
	int switched;		/* it has switched to post-copy: a cancel would lose the guest */
	int paused;		/* post-copy paused, link broken: migrate-recover is welcome */
	int cancel;		/* migrate-cancel arrived */
	int postcopy_now;	/* migrate-postcopy-now arrived */
	char recover_uri[300];	/* migrate-recover's address ("": none waiting) */
	struct shim_client *recover_client; /* answered once that recovery ends */
};

struct container {
	const char *root;
	struct ct_config cfg;
	struct ct_status st;
	enum hv_accel accel;

	/* paths in the container's directory */
	char *dir, *sock_path, *qmp_path, *agent_path, *console_path, *log_path, *disk_path;

	pid_t qemu_pid;
	struct { int64_t t0, t1; uint64_t run0, run1; } vcpu; /* vcpu_load.c's two last samples */
	struct gw_network net;	/* the network of cfg.network (shim_net.c) */
	char tap[GW_IFNAME_MAX]; /* its tap while the shim runs ("" = none) */
	int port_fds[GW_PORTS_MAX]; /* the host ports it publishes, held (shim_net.c) */
	int nports;
	int net_sealed;		/* an incoming container's tap stays down until COMMIT */
	int net_leased;		/* an incoming container leased its address here */
	unsigned vols_made;	/* an incoming container made these volumes here (bit i: its
				 * config's volume i; mig_volumes.c) */
	struct qmp *qmp;
	struct alink *agent;
	int log_fd;		/* output.log, O_APPEND */
	int console_fd;		/* the console's socket from QEMU (console.c), -1 */
	int console_log_fd;	/* console.log */
	int listen_fd;
	int signal_fd;
	struct mig_asks asks;	/* what the control API asks of a move running here */
	char *tls_dir;		/* a move inside TLS: its certificates (docs/security.md); the
				 * destination's for its life, the source's for the move */
	uint64_t max_mem;	/* an incoming container's size may not pass these */
	int max_cpus;
	struct job *job;	/* a migration or snapshot running in the shim (job.h) */
	enum shim_access access; /* what the control API may do meanwhile */
	struct shim_client *job_client; /* the one that asked for it: not read meanwhile */
	struct shim_client clients[SHIM_MAX_CLIENTS];

	int started;		/* START sent to the agent */
	int query_seq;		/* the last guest-query's id (control_query.c) */
	int winsize[2];		/* the main process's tty: rows, cols a client asked for (0 0) */
	/* the main process's stdin that came before START (control_input.c), sent after it */
	struct { uint8_t *buf; size_t len; int eof; } stdin_early;
	int hold_start;		/* OCI create (docs/oci-runtime.md): created until "start" */
	int agent_hello;	/* the agent said HELLO: START may go */
	int stdio_fd[3];	/* the OCI runtime's stdin, stdout, stderr (stdio_pass.c), -1 */
	int stdio_tty;		/* ... a terminal's slave (oci_console.c) */
	/* cfg.netns (shim_netns.c): the tap made in that namespace, held for the shim's life (the
	 * kernel removes it with the last fd), and what the NIC takes over from its interface */
	int netns_tap_fd;
	struct shim_netns_if {
		char mac[18], ip[16], gateway[16];
		int prefix, mtu;
	} netns_if;
	int main_exited;	/* EXIT for chan 0 received */
	int64_t quit_deadline_ns; /* monotonic: force QEMU down after this (0 = none) */
	int stop_asked;		/* stop, or a signal to the shim: no restart (run --restart) */
	struct exec_chans chans; /* exec sessions' numbers */
	int done;		/* leave the event loop */
	int incoming_failed;	/* the migration into this shim failed: remove the record */
};

/* control_input.c: the control API's stdin and resize (docs/api.md), and the main
 * process's early stdin once START went */
#define SHIM_STDIN_EARLY_MAX (1U << 20)
#define SHIM_TTY_SIZE_MAX 10000
void ctl_do_stdin(struct container *ct, struct shim_client *cl, json_object *args);
void ctl_do_resize(struct container *ct, struct shim_client *cl, json_object *args);
void shim_stdin_early_flush(struct container *ct);
/* input for the main process (kept until START): 0, -EAGAIN when it cannot be taken now */
int shim_input_main(struct container *ct, const void *b, size_t n, struct gw_err *err);
int shim_input_main_room(struct container *ct, size_t n); /* can n bytes be taken now? */

/* control_query.c: guest-query (ps, stats) and its answer event */
void ctl_do_guest_query(struct container *ct, struct shim_client *cl, json_object *args);
void shim_query_answered(struct container *ct, json_object *ans);
void ctl_query_timeouts(struct container *ct);

/* stdio_pass.c: the main process's output also to the stdout/stderr the OCI runtime was
 * given (conmon's pipes); stdout is stream 1, stderr 2 */
void shim_stdio_take(struct container *ct, int first_fd);
void shim_stdio_write(struct container *ct, int stream, const void *data, size_t len);
/* the runtime's stdin into the main process's (cfg.open_stdin): the fd to poll while it can
 * take a chunk (-1: not now), and what to do when it is readable */
int shim_stdio_in_fd(struct container *ct);
void shim_stdio_on_input(struct container *ct);
/* with a terminal for stdio (godwit-runtime's --console-socket): its window size, checked at
 * every turn of the loop, goes to the main process's tty when it changes */
void shim_stdio_size_check(struct container *ct);
void shim_stdio_close(struct container *ct);

/* log_rotate.c: after an append to the output log, rotate it if it reached its size (run
 * --log-opt) and no job reads it */
void shim_log_rotate_check(struct container *ct);

/* console.c: the guest's console into console.log, and shim.log, each kept to a size */
#define SHIM_CONSOLE_MAX (1ULL << 20)
#define SHIM_OWN_LOG_MAX (1ULL << 20)
/* A socketpair for a new QEMU's console: the shim's end in ct, QEMU's in *qemu_end (the
 * caller passes it and closes it); console.log made afresh. */
int shim_console_open(struct container *ct, int *qemu_end, struct gw_err *err);
void shim_console_on_readable(struct container *ct);
void shim_console_close(struct container *ct);
/* shim.log (the shim's stderr) becomes shim.log.1 once it reaches SHIM_OWN_LOG_MAX */
void shim_own_log_check(struct container *ct);

/* vm_jail.c: QEMU's confinement (docs/security.md) */
#define SHIM_JAIL_QMP_FD 3
#define SHIM_JAIL_AGENT_FD 4
#define SHIM_JAIL_CONSOLE_FD 5
#define SHIM_JAIL_TAP_FD 6	/* godwit-runtime's tap in its network namespace (shim_netns.c) */
struct shim_jail {
	struct hv_jail j;
	int qmp_fd, agent_fd;	/* the listening sockets QEMU gets */
	int console_fd;		/* QEMU's end of the console's socketpair */
	int tap_fd;		/* the tap QEMU gets as SHIM_JAIL_TAP_FD (not owned), or -1 */
	char *base, *vm_dir;	/* paths j keeps */
	char *hide;		/* where j's tmpfs goes (the state root or above) */
};
/* Hand QEMU's files to its user, bind its sockets, fill the jail; hc gets the fds and the
 * sandbox. */
int shim_jail_prepare(struct container *ct, struct hv_vm_config *hc, struct shim_jail *sj,
		      struct gw_err *err);
/* In QEMU's child: the sockets at fds 3, 4 and 5, then hv_jail_enter. */
int shim_jail_child(const struct shim_jail *sj, struct gw_err *err);
void shim_jail_release(struct shim_jail *sj);
/* Copies of the TLS files QEMU's side (server or client) needs, readable by QEMU's user only,
 * in CT/vm/tls (*out); shim_jail_tls_drop removes them once QEMU has loaded them. */
/* A unix socket the shim bound at path (in the container's vm/ directory) given to QEMU's
 * user, so that its QEMU may connect to it. */
int shim_jail_socket(const char *path, struct gw_err *err);
int shim_jail_tls_copy(struct container *ct, const char *tls_dir, int server, char **out,
		       struct gw_err *err);
void shim_jail_tls_drop(char **dir);

/* shim.c */
/* Start QEMU with the container's devices, connect QMP and (unless incoming) the agent link.
 * incoming: -incoming defer; paused: -S. */
int shim_vm_start(struct container *ct, int incoming, int paused, struct gw_err *err);
int shim_set_state(struct container *ct, enum ct_state to, const char *detail);
/* Broadcast an event to attached clients (chan 0) or to the client owning an exec chan. */
void shim_emit(struct container *ct, int chan, const char *name, json_object *data);
/* Ask the VM to go down: graceful through the agent, forced (QMP quit / SIGKILL) after
 * grace_ms. */
void shim_request_stop(struct container *ct, int grace_ms);
/* Kill QEMU at once (SIGKILL) and reap it. */
void shim_kill_qemu(struct container *ct);

/* shim_net.c: the container's tap on its network's bridge (nothing without a network) */
int shim_net_up(struct container *ct, struct gw_err *err);
void shim_net_down(struct container *ct);
/* a migration's ends (docs/network.md, "Moving a container on a network"): what CONFIG says
 * of the network (NULL without one); the destination takes it up before its QEMU starts
 * (refusal reasons network-missing, network-mismatch, ip-taken, port-busy, network), sealed;
 * COMMIT unseals it and announces the guest; the end that lets the container go gives up
 * its tap, ports and address */
json_object *shim_net_config_json(const struct container *ct);
int shim_net_take(struct container *ct, json_object *net, char *reason, size_t rlen,
		  struct gw_err *err);
int shim_net_unseal(struct container *ct, struct gw_err *err);
void shim_net_leave(struct container *ct);
/* START's "net" for the agent (NULL without a network) */
json_object *shim_net_start_json(const struct container *ct);
/* shim_netns.c: cfg.netns's interface taken over by a tap of its own, before QEMU starts
 * (fills netns_tap_fd, netns_if and cfg.nic_mac); START's "net" for it (NULL: none) */
int shim_netns_up(struct container *ct, struct gw_err *err);
json_object *shim_netns_start_json(const struct container *ct);

/* vcpu_load.c: the loop samples the vCPUs' run time (at most every 250 ms, only for a VM
 * with the free-page-hint device: src_hints is the one that asks); a move asks how
 * busy they were since a sample at least that old: the share of the time they ran, per vCPU
 * (0 to 1), or -1 when it cannot be told (no QEMU, no sample yet, /proc unreadable) */
void shim_vcpu_sample(struct container *ct);
double shim_vcpu_load(struct container *ct);

/* control.c */
void ctl_handle(struct container *ct, struct shim_client *cl, json_object *req);
void ctl_reply(struct shim_client *cl, json_object *msg); /* takes msg */
/* Send msg to a client (not taken). A client that has not read for SHIM_CLIENT_SEND_MS is
 * cut off (the loop then closes it): one that stops reading must not stall the shim, the
 * guest's output or the other clients. */
#define SHIM_CLIENT_SEND_MS 1000
void shim_send(struct shim_client *cl, json_object *msg);
void ctl_reply_error(struct shim_client *cl, const char *desc);
/* control_migrate.c: migrate, snapshot, and the requests to a running move
 * (query-migration, migrate-cancel, migrate-postcopy-now, migrate-recover). 1 when cmd was
 * one of them (and is answered or will be), 0 when it is not theirs. */
int ctl_migration_command(struct container *ct, struct shim_client *cl, const char *cmd,
			  json_object *args);
/* The move ended: a migrate-recover still waiting gets its answer, the asks are cleared. */
void ctl_asks_end(struct container *ct, const char *why);
/* The agent answered something on an exec chan: that exec's start deadline is off. */
void ctl_exec_answered(struct container *ct, int chan);
/* Fail the exec sessions whose agent has not answered in time (called every loop turn). */
void ctl_exec_timeouts(struct container *ct);

/* agent_link.c */
int alink_open(struct container *ct, struct gw_err *err);
int alink_fd(struct container *ct);
/* Read and dispatch what the agent sent; -EPIPE when the link closed. */
int alink_on_readable(struct container *ct);
/* Flush queued frames; called when the fd is writable. */
int alink_on_writable(struct container *ct);
int alink_wants_write(struct container *ct);
/* Lazy acks of the agent's output: lower *timeout_ms to when one is due; send it when due. */
void alink_timeout(struct container *ct, int *timeout_ms);
void alink_tick(struct container *ct);
int alink_send_exec(struct container *ct, int chan, json_object *spec, struct gw_err *err);
int alink_send_signal(struct container *ct, int chan, int sig, struct gw_err *err);
int alink_send_stdin(struct container *ct, int chan, const void *data, size_t len,
		     struct gw_err *err);
/* a tty's window size (WINSIZE) */
int alink_send_winsize(struct container *ct, int chan, int rows, int cols, struct gw_err *err);
int alink_can_send(struct container *ct, size_t len);	/* the link's queue has room */
int alink_send_query(struct container *ct, json_object *q, struct gw_err *err);	/* QUERY */
int alink_send_shutdown(struct container *ct, int grace_ms, struct gw_err *err);
/* START the main process, if the agent has said HELLO (else HELLO will); once */
int alink_start(struct container *ct);
void alink_close(struct container *ct);
/* Serialise the link (after draining what QEMU delivered) for a snapshot or migration. */
int alink_save(struct container *ct, uint8_t **buf, size_t *len, struct gw_err *err);
/* Around a live migration's switch: once the source's guest has stopped and its device state
 * is about to be taken, nothing may reach that guest any more. QEMU's virtio-serial takes
 * what we write (and releases the buffers of what we read) into a stopped guest's memory, and
 * after a post-copy switch those writes are neither in the device state nor sent again: the
 * destination's virtio rings then disagree with its device, and its guest kernel breaks.
 * ALINK_NO_WRITES keeps reading (the guest's last output) but writes nothing, not even an
 * ACK; ALINK_FROZEN first reads what is already there, then touches the socket no more;
 * ALINK_LIVE undoes both (a move that failed before its commit: the source runs on).
 * alink_save then saves without reading. */
enum alink_mode { ALINK_LIVE, ALINK_NO_WRITES, ALINK_FROZEN };
void alink_set_mode(struct container *ct, enum alink_mode mode);
/* What alink_restore() released of a migrated guest's held output: how many reads, when the
 * first arrived (0: none held) and when the link was restored with all of them logged and
 * sent to attached clients (CLOCK_REALTIME ns). The gap between the two is how late the
 * world saw the guest's first output after the move. */
struct alink_release {
	unsigned reads;
	int64_t first_rx_ns;
	int64_t released_ns;
};
/* Connect to a restored/migrated guest's port with a saved link. resync: send RESYNC now (a
 * restored snapshot); otherwise (a migrated guest, whose state is the saved link's) resend our
 * unacknowledged frames and send RESYNC only once a frame is seen lost, or none has come in
 * ALINK_SYNC_WAIT_NS (docs/agent-protocol.md section 4). After alink_hold(), first replays what
 * was held, each frame stamped with its arrival time, and says so in *rel (may be NULL). */
int alink_restore(struct container *ct, const void *buf, size_t len, bool resync,
		  struct alink_release *rel, struct gw_err *err);
/* Migration destination, before its guest may run: connect to the port and hold (read, stamp,
 * keep; never parse, acknowledge or log) what the agent sends until alink_restore(). */
int alink_hold(struct container *ct, struct gw_err *err);

/* agent_hold.c: the reader thread behind alink_hold() */
struct alink_held {
	struct alink_held *next;
	int64_t rx_ns;	/* host arrival time (CLOCK_REALTIME) */
	size_t len;
	uint8_t data[];
};
struct alink_hold;
/* Start a thread that reads fd into a list of stamped chunks until alink_hold_stop(). */
struct alink_hold *alink_hold_start(int fd, struct gw_err *err);
/* Stop and join the thread; returns the chunks in arrival order (free with alink_held_free). */
struct alink_held *alink_hold_stop(struct alink_hold *h);
void alink_held_free(struct alink_held *list);

#endif
