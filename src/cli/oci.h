/* godwit-runtime: an OCI runtime with runc's command line (docs/oci-runtime.md), so podman
 * (through conmon) and containerd's runc shim can run containers in godwit's VMs. One
 * oci_<verb>.c per verb; oci_main.c parses the global options and dispatches. The container
 * is an ordinary godwit container under --root, made from the bundle instead of an image. */
#ifndef GODWIT_CLI_OCI_H
#define GODWIT_CLI_OCI_H

#include "cli.h"
#include "godwit/container.h"

#define OCI_ROOT_DEFAULT "/run/godwit-runtime"
#define OCI_VERSION "1.0.2"	/* the runtime-spec version `state` reports */

struct oci_rt {
	struct gw_cli cli;	/* cli.root: --root */
	const char *log;	/* --log FILE: errors also go there */
	int log_json;		/* --log-format json */
};

/* An error, once: to stderr as "godwit-runtime: MSG" and to --log (a JSON line with
 * --log-format json, as runc writes it). Returns 1, runc's status for a failed command. */
int oci_fail(const struct oci_rt *rt, const struct gw_err *err);
int oci_failf(const struct oci_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The runtime's record beside the container's own: oci.json {bundle, rootfs, created,
 * annotations} */
struct oci_rec {
	char *bundle;
	char *rootfs;		/* root.path made absolute */
	char *created;		/* RFC 3339 */
	char *annotations;	/* JSON object text */
	struct ct_status st;
};
/* id's record; -ENOENT "container does not exist" (runc's words) when there is none */
int oci_rec_load(const struct oci_rt *rt, const char *id, struct oci_rec *rec,
		 struct gw_err *err);
void oci_rec_free(struct oci_rec *rec);
/* One request to id's shim (args may be NULL): 0, or the error reported (oci_fail's 1) */
int oci_shim_call(struct oci_rt *rt, const char *id, const char *cmd, json_object *args);
/* runc's status of a godwit state: created, running, paused or stopped */
const char *oci_status(enum ct_state s);

int oci_create(struct oci_rt *rt, int argc, char **argv);
/* oci_console.c: a host terminal whose master goes to the --console-socket caller; its slave
 * (raw) returned, or <0 */
int oci_console_open(const char *socket_path, struct gw_err *err);
int oci_start(struct oci_rt *rt, int argc, char **argv);
int oci_state(struct oci_rt *rt, int argc, char **argv);
int oci_kill(struct oci_rt *rt, int argc, char **argv);
int oci_exec(struct oci_rt *rt, int argc, char **argv);
int oci_pause(struct oci_rt *rt, int argc, char **argv);
int oci_update(struct oci_rt *rt, int argc, char **argv);
int oci_resume(struct oci_rt *rt, int argc, char **argv);
int oci_ps(struct oci_rt *rt, int argc, char **argv);
int oci_delete(struct oci_rt *rt, int argc, char **argv);
int oci_features(struct oci_rt *rt, int argc, char **argv);

#endif
