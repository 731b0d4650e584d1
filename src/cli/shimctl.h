/* Helpers the CLI's commands share for starting and talking to shims (src/cli/shimctl.c). */
#ifndef GODWIT_CLI_SHIMCTL_H
#define GODWIT_CLI_SHIMCTL_H

#include "cli.h"
#include "godwit/ctl.h"

/* The guest kernel and initramfs: --kernel/--initrd, else $GODWIT_KIT, else guest/ beside the
 * binary (the build tree), else /usr/local/lib/godwit. Absolute paths, malloc'd. */
int cli_kit_paths(const struct gw_cli *cli, char **kernel, char **initrd, struct gw_err *err);

/* cli_vm.c: a new container's accelerator, QEMU machine type (umachine, or this QEMU's
 * newest, kept by the container for good so it can move to newer QEMUs) and guest kit into
 * cfg (run, and godwit-runtime create) */
struct ct_config;
int cli_vm_basics(const struct gw_cli *cli, const char *umachine, struct ct_config *cfg,
		  struct gw_err *err);

/* Start the shim for container `name` (its config.json must exist) and wait until it reports
 * ready or fails; extra are more shim arguments (NULL-terminated, may be NULL). */
int cli_spawn_shim(const struct gw_cli *cli, const char *name, char *const extra[],
		   struct gw_err *err);
/* The same; with stdio (3 fds: this process's 0 1 2, or a terminal's slave thrice) the shim
 * also gets them as its fds 4, 5 and 6 (`--stdio-fd 4`: the OCI runtime's container stdio). */
int cli_spawn_shim_ex(const struct gw_cli *cli, const char *name, char *const extra[],
		      const int *stdio, struct gw_err *err);

/* Connect to a running container's shim; a clear error when it is not running. */
int cli_connect(const struct gw_cli *cli, const char *name, struct gw_err *err);

/* Copy output events to stdout/stderr until an exit event (*status) or the shim closes
 * (*status stays -1). */
int cli_stream_events(int fd, struct ctl_reader *rd, int *status, struct gw_err *err);
/* SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 blocked and readable from the fd
 * returned (-1: none), for cli_session_run */
int cli_signals_forwarded(void);

/* Print one output (to out_fd, err_fd) or error event of an attached session; 1 (and
 * *status) for its exit. */
int cli_print_event(json_object *m, int *status, int out_fd, int err_fd);

/* cli_session.c: an attached session with input. in_fd: our stdin to relay (-1 none); tty:
 * the process has a tty, so our terminal goes raw (if in_fd is one) and its size follows ours;
 * sigfd: cli_signals_forwarded's (-1 none); detach: the keys that end a tty session (ndetach
 * 0: none; without tty they are data). 0 when the process exited (*status) or the shim closed (*status -1), CLI_DETACHED
 * when detached, <0 on an error. */
#define CLI_DETACHED 1
#define CLI_DETACH_MAX 16
#define CLI_DETACH_DEFAULT "ctrl-p,ctrl-q"
struct cli_session_opts {
	int in_fd, tty, sigfd;
	int out_fd, err_fd;	/* where the output goes (0: our stdout, stderr) */
	char detach[CLI_DETACH_MAX];
	size_t ndetach;
};
int cli_session_run(int fd, struct ctl_reader *rd, const struct cli_session_opts *o, int *status,
		    struct gw_err *err);
/* docker's --detach-keys: "ctrl-X" (a-z @ [ \ ] ^ _) or one character, comma-separated; -1 if
 * malformed */
int cli_detach_keys_parse(const char *spec, char *out, size_t *n);

/* cmd_attach.c: attach to name's main process (with logs, the log replayed first) and run a session
 * (o->tty, o->in_fd say what to relay; signals forwarded) until it exits (its status),
 * detaches (0) or the shim goes (125, saying why: a move away, a VM that stopped); with
 * wait_down, after the exit wait until the shim is gone (the container stopped, or removed). cmd names the command for errors. */
int cli_attach_session(struct gw_cli *cli, const char *cmd, const char *name,
		       struct cli_session_opts *o, int logs, int wait_down);

/* What the guest's agent says about a running container (docs/api.md guest-query): what
 * "ps" or "stats"; *out the answer's object ({"ps": [...]} or {"stats": {...}}). */
int cli_guest_query(const struct gw_cli *cli, const char *name, const char *what,
		    json_object **out, struct gw_err *err);

/* o's integer member k, 0 when it has none (guest-query answers) */
int64_t cli_json_int(json_object *o, const char *k);

/* Wait until the peer closes fd (the shim exited). -ETIMEDOUT after timeout_ms. */
int cli_wait_closed(int fd, int timeout_ms);

#endif
