/* A container's record in the state directory (ROOT/containers/NAME/): its config (written once
 * by `run`, `restore` or an incoming migration) and its state (written only by its shim), plus
 * the one lifecycle state machine. The CLI reads these; only the shim changes the state. */
#ifndef GODWIT_CONTAINER_H
#define GODWIT_CONTAINER_H

#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "godwit/err.h"

enum ct_state {
	CT_CREATED = 0,
	CT_RUNNING,
	CT_PAUSED,
	CT_MIGRATING,
	CT_STOPPED,
	CT_MIGRATED,
	CT_INCOMING,
	CT_STATE_COUNT,
};

const char *ct_state_name(enum ct_state s);
int ct_state_parse(const char *s, enum ct_state *out);

/* 0 if from -> to is a legal lifecycle transition, else -EINVAL with the reason in err. The
 * table (src/common/lifecycle.c) is the only place that says which changes are allowed. */
int ct_check_transition(enum ct_state from, enum ct_state to, struct gw_err *err);

/* Everything needed to (re)create the container VM: the same on source and destination. */
struct ct_config {
	char name[65];
	char image[256];	/* the reference the user gave */
	char image_id[72];	/* "sha256:<hex>" */
	char **argv;		/* NULL-terminated; the resolved entrypoint + cmd */
	char **env;		/* NULL-terminated "K=V" */
	char *cwd;
	char *user;
	char *hostname;
	uint64_t mem_bytes;
	int cpus;
	int auto_remove;	/* --rm */
	int tty;		/* -t: the main process gets a pseudo-terminal in the guest */
	int open_stdin;		/* -i: its stdin stays open for attached clients */
	char accel[8];		/* "tcg" | "kvm": chosen at creation, kept across restarts */
	char machine[32];	/* QEMU machine type chosen at creation ("" = before it was kept:
				 * HV_MACHINE_LEGACY); kept across restarts and moves */
	char *kernel;
	char *initrd;
	int free_page_hints;	/* the VM has a virtio-balloon that reports the guest's free pages
				 * to a move (docs/migration-policy.md, "Free-page hints"): chosen
				 * at creation (0 for containers made before it), kept across
				 * restarts and moves, as the device set must be */
	char nic_mac[18];	/* "" = no NIC */
	char network[32];	/* the network the NIC is on (docs/network.md); "" = none */
	char ip[16];		/* its address there, leased from the network's IPAM */
	char **ports;		/* published ports, "tcp:0.0.0.0:8080:80" (NULL = none) */
	char **volumes;		/* volume mounts, "NAME:/target[:ro]" (godwit/mount.h; NULL = none) */
	char **rlimits;		/* the main process's, "RLIMIT_X=SOFT:HARD" (godwit-runtime's
				 * process.rlimits; NULL = the guest's defaults) */
	char *netns;		/* godwit-runtime: the network namespace (a path) whose interface the
				 * VM's NIC takes over (docs/oci-runtime.md); NULL = none. Never
				 * taken from a peer or a snapshot (ct_config_from_json refuses it) */
	int64_t created_ns;	/* wall clock */
	/* the output log's rotation (run --log-opt; 0 = the defaults below): output.log is
	 * renamed output.log.1 (older ones shift up) once it reaches log_max_size, and at most
	 * log_max_file files are kept, output.log counted */
	uint64_t log_max_size;
	int log_max_file;
	/* run --restart: when the VM goes down by itself the shim boots it again (docs/cli.md) */
	enum ct_restart { CT_RESTART_NO, CT_RESTART_ON_FAILURE, CT_RESTART_ALWAYS } restart;
	int restart_max;	/* on-failure: at most this many restarts (0: no limit) */
};
#define CT_RESTART_MAX_RETRIES 1000
#define CT_LOG_MAX_SIZE_DEFAULT (20ULL << 20)	/* as Docker's "local" log driver */
#define CT_LOG_MAX_FILE_DEFAULT 5
#define CT_LOG_MAX_SIZE_MIN (4ULL << 10)
#define CT_LOG_MAX_FILE_MAX 100

/* What the shim publishes (state.json, atomically replaced on every change). */
struct ct_status {
	enum ct_state state;
	pid_t shim_pid;
	pid_t qemu_pid;
	int64_t started_ns;	/* wall clock when the VM started (0 = never) */
	int64_t finished_ns;
	int exit_status;	/* -1 = none yet */
	int restarts;		/* times the shim booted it again (run --restart) */
	char detail[256];	/* e.g. why it stopped, where it migrated */
};

/* Paths inside ROOT/containers/NAME. */
char *ct_dir(const char *root, const char *name);
char *ct_path(const char *root, const char *name, const char *file);

int ct_config_to_json(const struct ct_config *c, json_object **out);
int ct_config_from_json(json_object *j, struct ct_config *c, struct gw_err *err);
int ct_config_save(const char *root, const struct ct_config *c, struct gw_err *err);
int ct_config_load(const char *root, const char *name, struct ct_config *c, struct gw_err *err);
void ct_config_free(struct ct_config *c);

int ct_status_save(const char *root, const char *name, const struct ct_status *s,
		   struct gw_err *err);
/* Loads state.json; a record whose shim is gone while it claims to be live is reported as
 * stopped with detail "shim exited unexpectedly". */
/* Is pid a running (not zombie) shim? Guards against a dead shim that nobody reaped yet and
 * against a pid reused by another program. */
int ct_shim_alive(pid_t pid);
int ct_status_load(const char *root, const char *name, struct ct_status *s, struct gw_err *err);

/* Names of all containers under ROOT (sorted; free with ct_names_free). */
int ct_list(const char *root, char ***names, struct gw_err *err);
void ct_names_free(char **names);

/* A NULL-terminated string vector helpers (json array <-> char **). */
char **ct_strv_from_json(json_object *arr);
json_object *ct_strv_to_json(char *const *v);
void ct_strv_free(char **v);
size_t ct_strv_len(char *const *v);
char **ct_strv_dup(char *const *v);

#endif
