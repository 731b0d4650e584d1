/* Helpers the CLI's commands share for starting and talking to shims (src/cli/shimctl.c). */
#ifndef GODWIT_CLI_SHIMCTL_H
#define GODWIT_CLI_SHIMCTL_H

#include "cli.h"
#include "godwit/ctl.h"

/* The guest kernel and initramfs: --kernel/--initrd, else $GODWIT_KIT, else guest/ beside the
 * binary (the build tree), else /usr/local/lib/godwit. Absolute paths, malloc'd. */
int cli_kit_paths(const struct gw_cli *cli, char **kernel, char **initrd, struct gw_err *err);

/* Start the shim for container `name` (its config.json must exist) and wait until it reports
 * ready or fails; extra are more shim arguments (NULL-terminated, may be NULL). */
int cli_spawn_shim(const struct gw_cli *cli, const char *name, char *const extra[],
		   struct gw_err *err);

/* Connect to a running container's shim; a clear error when it is not running. */
int cli_connect(const struct gw_cli *cli, const char *name, struct gw_err *err);

/* Copy output events to stdout/stderr until an exit event (*status) or the shim closes
 * (*status stays -1). */
int cli_stream_events(int fd, struct ctl_reader *rd, int *status, struct gw_err *err);

/* Wait until the peer closes fd (the shim exited). -ETIMEDOUT after timeout_ms. */
int cli_wait_closed(int fd, int timeout_ms);

#endif
