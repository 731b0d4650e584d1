/* Snapshot and restore of a container VM (docs/snapshot.md): QEMU's migration stream to and
 * from a file, wrapped with the container's config, agent link, output log and overlay disk in
 * one snapshot file (include/godwit/snapfile.h). Runs inside the shim that owns the container.
 * mig_snapshot() is the `snapshot` control command; mig_restore_vm() is the shim's --restore. */
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "godwit/qmp.h"
#include "godwit/snapfile.h"
#include "godwit/util.h"
#include "migrate.h"

#define SNAP_QEMU_TIMEOUT_MS (600 * 1000)
#define SNAP_LINK_MAX (16u << 20)
/* CONFIG is capped at SNAP_MAX_CONFIG; what the rest leaves (less a margin) is for the log */
#define SNAP_CONFIG_MARGIN 4096

/* A file next to path for QEMU's stream, gone from the directory from the start (O_TMPFILE,
 * or created and unlinked at once), so nothing is left behind if the shim dies. */
static int open_state_tmp(const char *path, struct gw_err *err)
{
	cleanup_free char *copy = strdup(path);
	if (!copy)
		return gw_err_set(err, ENOMEM, "out of memory");
	const char *dir = dirname(copy);
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	cleanup_free char *tmpl = gw_strdup_printf("%s.state.XXXXXX", path);
	if (!tmpl)
		return gw_err_set(err, ENOMEM, "out of memory");
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "create a temporary file in %s", dir);
	unlink(tmpl);
	return fd;
}

/* A paused guest's state goes out as fast as the disk takes it: no bandwidth cap, none of a
 * live migration's levers (a failed live migration may have left them on). */
static int qemu_setup_for_file(struct container *ct, struct gw_err *err)
{
	json_object *caps = json_object_new_array();
	const char *names[] = { "xbzrle", "auto-converge", "postcopy-ram" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "capability", json_object_new_string(names[i]));
		json_object_object_add(c, "state", json_object_new_boolean(0));
		json_object_array_add(caps, c);
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "capabilities", caps);
	int r = qmp_execute(ct->qmp, "migrate-set-capabilities", a, NULL, 5000, err);
	json_object_put(a);
	if (r < 0)
		return r;
	a = json_object_new_object();
	json_object_object_add(a, "max-bandwidth", json_object_new_int64(INT64_MAX / 2));
	r = qmp_execute(ct->qmp, "migrate-set-parameters", a, NULL, 5000, err);
	json_object_put(a);
	return r;
}

/* QEMU's state of the (paused) guest into fd; on return fd's offset is undefined. */
static int save_state(struct container *ct, int fd, struct gw_err *err)
{
	char status[32];
	int r = qemu_setup_for_file(ct, err);
	if (r == 0)
		r = mig_qemu_stream(ct, "migrate", fd, 0, err);
	if (r == 0)
		r = mig_wait_qemu(ct, SNAP_QEMU_TIMEOUT_MS, status, sizeof(status), err);
	if (r == 0 && strcmp(status, "completed"))
		r = err->code ? -err->code : gw_err_set(err, EIO, "QEMU's migration %s", status);
	if (r < 0) {
		qmp_execute(ct->qmp, "migrate_cancel", NULL, NULL, 5000, NULL);
		mig_wait_qemu(ct, 10000, status, sizeof(status), NULL);
		return gw_err_prefix(err, "save the VM's state");
	}
	return 0;
}

static char *b64_encode(const void *buf, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
	return out;
}

/* The output log's newest whole records that fit in room bytes (all of it when it fits). */
static int read_log_tail(struct container *ct, size_t room, char **out, size_t *len,
			 uint64_t *dropped, struct gw_err *err)
{
	cleanup_close int fd = open(ct->log_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	*out = NULL;
	*len = 0;
	*dropped = 0;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return gw_err_sys(err, errno, "read %s", ct->log_path);
	uint64_t size = (uint64_t)st.st_size, off = size > room ? size - room : 0;
	size_t n = (size_t)(size - off);
	cleanup_free char *buf = malloc(n + 1);
	if (!buf)
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t got = 0; got < n;) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return gw_err_sys(err, errno, "read %s", ct->log_path);
		if (k == 0) {
			n = got;
			break;
		}
		got += (size_t)k;
	}
	size_t skip = 0;
	if (off > 0) { /* start at a record boundary */
		char *nl = memchr(buf, '\n', n);
		skip = nl ? (size_t)(nl - buf) + 1 : n;
	}
	memmove(buf, buf + skip, n - skip);
	*len = n - skip;
	*dropped = off + skip;
	*out = steal_ptr(buf);
	return 0;
}

/* CONFIG: {"container", "link", "link_len", "log", "log_len", "log_dropped"} */
static int make_config(struct container *ct, const uint8_t *link, size_t link_len,
		       char **out, struct gw_err *err)
{
	json_object *o = json_object_new_object(), *c;
	ct_config_to_json(&ct->cfg, &c);
	json_object_object_add(o, "container", c);
	cleanup_free char *lb = b64_encode(link, link_len);
	if (!lb) {
		json_object_put(o);
		return gw_err_set(err, ENOMEM, "out of memory");
	}
	json_object_object_add(o, "link", json_object_new_string(lb));
	json_object_object_add(o, "link_len", json_object_new_int64((int64_t)link_len));
	size_t used = strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) + 64;
	if (used + SNAP_CONFIG_MARGIN > SNAP_MAX_CONFIG) {
		json_object_put(o);
		return gw_err_set(err, EFBIG, "the container's config and agent link exceed %u bytes",
				  SNAP_MAX_CONFIG);
	}
	size_t room = (SNAP_MAX_CONFIG - used - SNAP_CONFIG_MARGIN) / 4 * 3;
	cleanup_free char *log = NULL, *log64 = NULL;
	size_t log_len;
	uint64_t dropped;
	int r = read_log_tail(ct, room, &log, &log_len, &dropped, err);
	if (r == 0 && !(log64 = b64_encode(log ? log : "", log_len)))
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	json_object_object_add(o, "log", json_object_new_string(log64));
	json_object_object_add(o, "log_len", json_object_new_int64((int64_t)log_len));
	json_object_object_add(o, "log_dropped", json_object_new_int64((int64_t)dropped));
	*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return *out ? 0 : gw_err_set(err, ENOMEM, "out of memory");
}

/* With the guest paused: QEMU's state, the link, the log and the disk into the writer. */
static int write_sections(struct container *ct, struct snap_writer *w, int state_fd,
			  struct gw_err *err)
{
	int r = save_state(ct, state_fd, err);
	if (r < 0)
		return r;
	/* the link after QEMU's stream: nothing moves in a paused guest, and draining the port
	 * appends to the log, which is read next */
	cleanup_free uint8_t *link = NULL;
	size_t link_len = 0;
	if ((r = alink_save(ct, &link, &link_len, err)) < 0)
		return gw_err_prefix(err, "save the agent link");
	cleanup_free char *cfg = NULL;
	if ((r = make_config(ct, link, link_len, &cfg, err)) < 0)
		return r;
	if ((r = snap_add_buffer(w, SNAP_SEC_CONFIG, cfg, strlen(cfg), err)) < 0)
		return r;
	/* QEMU flushed and released the disk when its migration completed */
	if ((r = snap_add_file(w, SNAP_SEC_DISK, ct->disk_path, err)) < 0)
		return r;
	if (lseek(state_fd, 0, SEEK_SET) < 0)
		return gw_err_sys(err, errno, "rewind the state file");
	if ((r = snap_section_begin(w, SNAP_SEC_STATE, err)) < 0 ||
	    (r = snap_section_copy_fd(w, state_fd, err)) < 0 ||
	    (r = snap_section_end(w, err)) < 0)
		return r;
	return 0;
}

/* Wait (without reaping: the event loop's SIGCHLD handler does) until QEMU has exited. */
static void wait_qemu_gone(struct container *ct, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10 && ct->qemu_pid > 0; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)ct->qemu_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == ct->qemu_pid)
			return;
		poll(NULL, 0, 10);
	}
}

int mig_snapshot(struct container *ct, const char *path, int stop_after, json_object **result,
		 struct gw_err *err)
{
	if (ct->st.state != CT_RUNNING || !ct->qmp || !ct->started)
		return gw_err_set(err, EINVAL, "container %s is %s, not running", ct->cfg.name,
				  ct->st.state == CT_RUNNING ? "starting" : ct_state_name(ct->st.state));
	if (path[0] != '/' || strlen(path) > 4000)
		return gw_err_set(err, EINVAL, "snapshot path must be absolute");
	int64_t t0 = gw_now_mono_ns();
	struct snap_writer *w = NULL;
	int r = snap_create(path, &w, err);
	if (r < 0)
		return r;
	cleanup_close int state_fd = open_state_tmp(path, err);
	if (state_fd < 0) {
		snap_discard(w);
		return state_fd;
	}
	if ((r = qmp_execute(ct->qmp, "stop", NULL, NULL, 5000, err)) < 0) {
		snap_discard(w);
		return gw_err_prefix(err, "pause the VM");
	}
	int64_t t_paused = gw_now_mono_ns();
	shim_set_state(ct, CT_PAUSED, "snapshot");
	r = write_sections(ct, w, state_fd, err);
	if (r == 0)
		r = snap_commit(w, err); /* frees w */
	else
		snap_discard(w);
	if (r < 0)
		gw_err_prefix(err, "snapshot %s to %s", ct->cfg.name, path);
	if (r == 0 && stop_after) {
		/* the container lives on in the file: no exit status to report for it */
		ct->main_exited = 1;
		shim_set_state(ct, CT_STOPPED, "stopped after a snapshot");
		qmp_execute(ct->qmp, "quit", NULL, NULL, 5000, NULL);
		wait_qemu_gone(ct, 10000);
	} else {
		/* a failed snapshot leaves the container running as before */
		struct gw_err e2 = { 0 };
		if (qmp_execute(ct->qmp, "cont", NULL, NULL, 5000, &e2) < 0) {
			if (r == 0)
				r = gw_err_set(err, e2.code ? e2.code : EIO, "snapshot written to %s, "
					       "but the VM did not resume: %s", path, e2.msg);
			shim_set_state(ct, CT_PAUSED, "did not resume after a snapshot");
		} else {
			shim_set_state(ct, CT_RUNNING, "");
		}
	}
	int64_t t1 = gw_now_mono_ns();
	if (r < 0)
		return r;
	struct stat st;
	json_object *res = json_object_new_object();
	json_object_object_add(res, "path", json_object_new_string(path));
	json_object_object_add(res, "bytes", json_object_new_int64(stat(path, &st) == 0
								   ? (int64_t)st.st_size : 0));
	json_object_object_add(res, "ms", json_object_new_int64((t1 - t0) / 1000000));
	json_object_object_add(res, "paused_ms", json_object_new_int64((t1 - t_paused) / 1000000));
	json_object_object_add(res, "stopped", json_object_new_boolean(stop_after));
	*result = res;
	return 0;
}

int mig_restore_vm(struct container *ct, const char *state_path, const char *link_path,
		   struct gw_err *err)
{
	cleanup_free char *link = NULL;
	size_t link_len = 0;
	char status[32];
	int r = gw_read_file(link_path, SNAP_LINK_MAX, &link, &link_len, err);
	cleanup_close int fd = r < 0 ? -1 : open(state_path, O_RDONLY | O_CLOEXEC);
	if (r == 0 && fd < 0)
		r = gw_err_sys(err, errno, "open %s", state_path);
	/* paused (-S) until the state is in and the agent link is back */
	if (r == 0)
		r = shim_vm_start(ct, 1, 1, err);
	if (r == 0)
		r = mig_qemu_stream(ct, "migrate-incoming", fd, 0, err);
	if (r == 0)
		r = mig_wait_qemu(ct, SNAP_QEMU_TIMEOUT_MS, status, sizeof(status), err);
	if (r == 0 && strcmp(status, "completed"))
		r = err->code ? -err->code : gw_err_set(err, EIO, "QEMU's incoming migration %s",
							status);
	if (r < 0)
		gw_err_prefix(err, "load the VM's state");
	if (r == 0 && (r = alink_restore(ct, link, link_len, err)) < 0)
		gw_err_prefix(err, "reconnect the agent link");
	/* the container's process is already running in the guest: never START it again */
	ct->started = 1;
	if (r == 0)
		r = qmp_execute(ct->qmp, "cont", NULL, NULL, 5000, err);
	unlink(state_path);
	unlink(link_path);
	return r;
}
