/* Private interfaces of godwit-agent, the guest's PID 1 (docs/agent-protocol.md section 5):
 * boot.c prepares the guest (mounts, modules, port, disk, loopback, power off), proc.c starts
 * container processes, main.c runs the one poll() loop that relays frames. */
#ifndef GODWIT_AGENT_H
#define GODWIT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "godwit/err.h"
#include "godwit/frame.h"

#define AGENT_MAX_PROCS 64
#define AGENT_ROOT "/newroot"
#define AGENT_INPUT_MAX (1U << 20)

struct agent_proc {
	bool used;
	uint16_t chan;
	pid_t pid;		/* 0 once reaped */
	int in_fd;		/* write end of its stdin pipe, or -1 */
	int out_fd, err_fd;	/* read ends of its stdout/stderr pipes, or -1 */
	int tty_fd;		/* its pseudo-terminal's master (START/EXEC "tty"), or -1 */
	uint8_t *in_buf;	/* STDIN bytes its stdin could not take yet (input.c) */
	size_t in_len;
	bool in_eof;		/* a len-0 STDIN came: close the pipe once in_buf is out */
	bool reaped;
	int status;		/* shell-style, valid once reaped */
};

struct agent {
	bool debug;
	const char *root;	/* AGENT_ROOT when a disk is mounted, else "/" */
	int port_fd;
	int sig_fd;
	bool host_gone;		/* port reported POLLHUP: no host connected */
	struct gw_link link;
	struct agent_proc procs[AGENT_MAX_PROCS];
	bool main_started, main_done;
	bool shutting_down;
	size_t in_pending;	/* bytes in all processes' in_buf: at AGENT_INPUT_MAX the port
				 * is not read until they drain */
	int64_t kill_at_ns;	/* SHUTDOWN: SIGKILL the main process at this time (0 = none) */
	int64_t poweroff_at_ns;	/* give up waiting for acks at this time (0 = not exiting) */
	int64_t out_quiet_ns;	/* the pipes are not read before this time: output sent less
				 * than AGENT_OUT_BATCH_NS ago gathers until then (main.c) */
};

/* Print to the console: always for problems, only with godwit.debug=1 for progress. */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void agent_dbg(const struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* boot.c */
void boot_mount_basics(void);
bool boot_debug_requested(void);
void boot_load_modules(const struct agent *a);
int boot_open_port(const struct agent *a, struct gw_err *err);
const char *boot_mount_root(const struct agent *a);
void boot_loopback_up(const struct agent *a);
void boot_power_off(const struct agent *a);

/* net.c: the container's NIC, route, /etc/hosts and /etc/resolv.conf from START's "net" */
struct json_object;
int net_setup(const struct agent *a, struct json_object *net, const char *hostname,
	      struct gw_err *err);

/* mounts.c: the volumes of START's "mounts", mounted in the container's root; unmounted
 * (before the root) at power-off */
int mounts_setup(const struct agent *a, struct json_object *mounts, struct gw_err *err);
void mounts_teardown(void);

/* proc.c: start the process described by a START/EXEC payload on chan; on failure *status is
 * the shell-style status (127 not found, 126 otherwise) and err says why. */
int proc_start(struct agent *a, struct agent_proc *p, uint16_t chan, const struct gw_frame *f,
	       bool is_main, int *status, struct gw_err *err);
/* input.c: STDIN frames queued into a process's stdin without blocking the agent */
int input_fd(const struct agent_proc *p);	/* where its input goes: its tty or pipe */
void input_add(struct agent *a, struct agent_proc *p, const uint8_t *b, size_t len);
void input_flush(struct agent *a, struct agent_proc *p);	/* poll() said it can take more */
void input_drop(struct agent *a, struct agent_proc *p);	/* it exited */

/* query.c: a QUERY frame answered (ANSWER) from the guest's /proc */
void query_handle(struct agent *a, const struct gw_frame *f);

/* a window size from the host, bounded to 0..PROC_TTY_SIZE_MAX */
#define PROC_TTY_SIZE_MAX 10000
int proc_clamp_size(int64_t v);

#endif
