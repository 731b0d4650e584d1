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
/* The same; with pass_stdio the shim also gets this process's stdin, stdout and stderr as
 * its fds 4, 5 and 6 (`--stdio-fd 4`: the OCI runtime's container stdio). */
int cli_spawn_shim_ex(const struct gw_cli *cli, const char *name, char *const extra[],
		      int pass_stdio, struct gw_err *err);

/* Connect to a running container's shim; a clear error when it is not running. */
int cli_connect(const struct gw_cli *cli, const char *name, struct gw_err *err);

/* Copy output events to stdout/stderr until an exit event (*status) or the shim closes
 * (*status stays -1). */
int cli_stream_events(int fd, struct ctl_reader *rd, int *status, struct gw_err *err);
/* The same, and every signal read from sigfd (cli_signals_forwarded's) is sent to the process
 * at the other end of fd (the main process of an attached run, an exec's), as docker's
 * --sig-proxy does; checked every 100 ms. */
int cli_stream_events_fwd(int fd, struct ctl_reader *rd, int *status, int sigfd,
			  struct gw_err *err);
/* SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 blocked and readable from the fd
 * returned (-1: none), for cli_stream_events_fwd */
int cli_signals_forwarded(void);

/* Wait until the peer closes fd (the shim exited). -ETIMEDOUT after timeout_ms. */
int cli_wait_closed(int fd, int timeout_ms);

#endif
