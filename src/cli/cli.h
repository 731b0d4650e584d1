/* The CLI's shared pieces: global options (podman-style, before the command) and the table of
 * commands, one cmd_<name>.c each. The CLI holds no state: everything comes from the state
 * directory and the shims. */
#ifndef GODWIT_CLI_H
#define GODWIT_CLI_H

#include <stdint.h>

#include "godwit/err.h"

struct gw_cli {
	const char *root;	/* --root / GODWIT_ROOT, default /var/lib/godwit */
	const char *accel;	/* --accel auto|kvm|tcg */
	const char *kernel;	/* --kernel, NULL = guest kit default */
	const char *initrd;	/* --initrd, NULL = guest kit default */
	const char *argv0;	/* path of this binary, for re-exec as the shim */
};

/* Each command parses its own arguments (argv[0] is the command name), prints its own output,
 * and returns the process exit status. Errors are printed once, by the command, as
 * "godwit <cmd>: message". */
#define GW_COMMANDS(X)                                                                     \
	X(load, "Load an image from a docker-archive or OCI layout (dir or tar)")          \
	X(images, "List images")                                                           \
	X(rmi, "Remove an image")                                                          \
	X(run, "Run a command in a new container VM")                                      \
	X(ps, "List containers")                                                           \
	X(logs, "Show a container's output")                                               \
	X(exec, "Run a second process in a running container")                             \
	X(attach, "Attach to a running container's main process (its tty, stdin, output)") \
	X(top, "Show the processes running in a container's guest")                     \
	X(stats, "Show containers' CPU, memory, network and disk use")                  \
	X(cp, "Copy files between a container and the host")                             \
	X(stop, "Stop a running container")                                                \
	X(start, "Start stopped containers again from their disks")                       \
	X(restart, "Stop and start containers")                                            \
	X(kill, "Send a signal to containers' main processes")                            \
	X(wait, "Wait until containers stop; print their exit codes")                     \
	X(inspect, "Show containers' configuration and state as JSON")                    \
	X(rm, "Remove a container")                                                        \
	X(info, "Versions, accelerator chosen and why, paths")                             \
	X(snapshot, "Write a running container's complete state to a file")               \
	X(restore, "Start a new container from a snapshot file")                           \
	X(incoming, "Start a destination that waits for a migrating container")            \
	X(migrate, "Move a container to another host (live or --offline)")                \
	X(network, "Manage container networks: create, ls, inspect, rm")                  \
	X(volume, "Manage named volumes: create, ls, rm")

#define X(name, help) int cmd_##name(struct gw_cli *cli, int argc, char **argv);
GW_COMMANDS(X)
#undef X

/* The hidden command the CLI re-executes itself as: one shim per container (shim_main). */
int cmd_shim(struct gw_cli *cli, int argc, char **argv);

/* For each of the n names: fn(cli, name, arg, err); print the name when it succeeded, the
 * error ("godwit CMD: ...") when it failed, and go on. Returns 0, or GW_EXIT_ERROR when any
 * failed (rm, stop). */
int cli_for_each(struct gw_cli *cli, const char *cmd, int n, char **names, int arg,
		 int (*fn)(struct gw_cli *cli, const char *name, int arg, struct gw_err *err));

/* Remove one container, its disks and its lease; a live one only with force (stopped first,
 * at once) (cmd_rm.c; godwit-runtime delete uses it). */
int cli_rm_one(struct gw_cli *cli, const char *name, int force, struct gw_err *err);

/* cli_signal.c: a signal by number (1-64) or name ("TERM", "SIGKILL"); -1 when neither */
int cli_parse_signal(const char *s);

/* Start a stopped container again from its disk (cmd_start.c; restart uses it); a live one
 * is left as it is */
int cli_start_one(struct gw_cli *cli, const char *name, int arg, struct gw_err *err);

/* Stop one container: SIGTERM, then SIGKILL after timeout_s (cmd_stop.c; rm -f uses it). */
int cli_stop_one(struct gw_cli *cli, const char *name, int timeout_s, struct gw_err *err);

/* Print "godwit <cmd>: <err->msg>" to stderr and return GW_EXIT_ERROR. */
int cli_fail(const char *cmd, const struct gw_err *err);

/* Print "godwit <cmd>: <fmt...>" (with a hint to --help) and return GW_EXIT_ERROR. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --memory-max (c 'm') or --cpus-max (c 'c') of cmd into its limit (cli_limits.c): 0, or the
 * exit status of a usage error */
int cli_limit_opt(const char *cmd, int c, const char *arg, uint64_t *max_mem, long *max_cpus);
/* -t/--time SECONDS of cmd (stop, restart: 0 to 3600) into *seconds: 0, or the exit status of a
 * usage error */
int cli_time_opt(const char *cmd, const char *arg, int *seconds);

/* cli_tls.c (docs/security.md): *out the TLS directory of a move, from flag or else
 * GODWIT_TLS_DIR, made absolute, with the files of its role (server: the destination)
 * readable; NULL when neither says one. cli_is_loopback: host is 127.0.0.0/8, ::1 or
 * localhost (an `incoming` without TLS listens only there unless --insecure). */
int cli_tls_dir(const char *flag, int server, char **out, struct gw_err *err);
int cli_is_loopback(const char *host);

/* run_net.c: run --network/--ip/--mac (docs/network.md) */
struct ct_config;
struct run_net {
	const char *network;	/* "none": no network; NULL: none, or with -p the default */
	const char *ip, *mac;	/* NULL: leased / generated */
	const char *publish[64]; /* -p specs as given */
	size_t npublish;
};
int run_net_check(const struct run_net *o, struct gw_err *err);
/* Lease the address, pick the MAC, fill cfg's network, ip and nic_mac (cfg->name set). */
int run_net_attach(const struct gw_cli *cli, const struct run_net *o, struct ct_config *cfg,
		   struct gw_err *err);
/* Give back what a container held on its network (its lease, a tap left behind). */
void run_net_detach(const struct gw_cli *cli, const char *name, const char *network);

#endif
