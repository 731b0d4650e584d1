/* Snapshot and restore of a container VM (docs/snapshot.md): QEMU writes its state with
 * mapped-ram and multifd straight into the snapshot file (file: URI at the STATE section's
 * offset), next to the container's config, agent link, output log and overlay disk
 * (include/godwit/snapfile.h), and reads it back from there. Runs inside the shim that owns the
 * container. mig_snapshot() is the `snapshot` control command; mig_restore_vm() is the shim's
 * --restore. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "godwit/hv_vm.h"
#include <openssl/crypto.h>

#include "godwit/snapfile.h"
#include "godwit/util.h"
#include "migrate.h"

#define SNAP_QEMU_TIMEOUT_MS (600 * 1000)
#define SNAP_LINK_MAX (16u << 20)
/* CONFIG is capped at SNAP_MAX_CONFIG; what the rest leaves (less a margin) is for the log */
#define SNAP_CONFIG_MARGIN 4096

#define SNAP_MULTIFD_CHANNELS 2
#define SNAP_DESC_MAX 8192

/* Does this QEMU have the capabilities a format-2 snapshot needs (mapped-ram: 9.0)? */
static int qemu_check_caps(struct container *ct, struct gw_err *err)
{
	unsigned have = 0;
	int r = hv_mig_query_caps(ct->qmp, &have, NULL, 5000, err);
	if (r < 0)
		return r;
	int mapped = !!(have & HV_MIG_CAP_BIT(HV_MIG_CAP_MAPPED_RAM));
	int multifd = !!(have & HV_MIG_CAP_BIT(HV_MIG_CAP_MULTIFD));
	if (!mapped || !multifd)
		return gw_err_set(err, ENOTSUP, "this QEMU has no %s migration capability (QEMU 9.0 "
				  "or later writes and reads snapshots)",
				  mapped ? "multifd" : "mapped-ram");
	return 0;
}

/* QEMU's migration set up for a snapshot file (on) or back as it was (off: a live move after
 * a snapshot must not inherit mapped-ram, which needs a seekable channel). A paused guest's
 * state goes out as fast as the disk takes it: no bandwidth cap, none of a live migration's
 * levers (a failed live migration may have left them on); the pages in two multifd threads
 * (mapped-ram gives each page its place in the file). plain: format 1's plain stream. Events
 * stay on (a live move turns them on too). */
static int qemu_setup_for_file(struct container *ct, int on, int plain, struct gw_err *err)
{
	struct hv_mig_cap_state caps[6];
	size_t n = 0;
	if (on) {
		caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_XBZRLE, 0 };
		caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_AUTO_CONVERGE, 0 };
		caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_POSTCOPY_RAM, 0 };
		/* MIGRATION events: mig_wait_qemu wakes at the end instead of at its next poll */
		caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_EVENTS, 1 };
	}
	caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_MAPPED_RAM, on && !plain };
	caps[n++] = (struct hv_mig_cap_state){ HV_MIG_CAP_MULTIFD, on && !plain };
	int r = hv_mig_set_caps(ct->qmp, caps, n, 5000, err);
	if (r < 0 || !on)
		return r;
	struct hv_mig_params p = { .set = HV_MIG_P_MAX_BANDWIDTH, .max_bandwidth = INT64_MAX / 2 };
	if (!plain) {
		p.set |= HV_MIG_P_MULTIFD_CHANNELS;
		p.multifd_channels = SNAP_MULTIFD_CHANNELS;
	}
	return hv_mig_set_params(ct->qmp, &p, 5000, err);
}

/* Start QEMU's side dir (HV_MIG_OUT: migrate, HV_MIG_IN: migrate-incoming) on the file fd from
 * byte off: fd goes into a QEMU fd set (add-fd), so QEMU opens exactly this file (and again
 * for each multifd channel, with fd's access mode) but never a path. *fdset gets the set's id
 * for remove_fdset. */
static int qemu_file_stream(struct container *ct, enum hv_mig_dir dir, int fd, uint64_t off,
			    int64_t *fdset, struct gw_err *err)
{
	int r = hv_vm_add_fd(ct->qmp, fd, fdset, 5000, err);
	if (r < 0)
		return r;
	char uri[96];
	snprintf(uri, sizeof(uri), "file:/dev/fdset/%" PRId64 ",offset=%" PRIu64, *fdset, off);
	r = hv_mig_start(ct->qmp, dir, uri, 0, 5000, err);
	mig_trace(dir == HV_MIG_OUT ? "snapshot: QEMU's migrate started"
				    : "restore: QEMU's migrate-incoming started");
	return r;
}

static void remove_fdset(struct container *ct, int64_t fdset)
{
	if (fdset >= 0)
		hv_vm_remove_fd(ct->qmp, fdset, 5000, NULL);
}

/* QEMU's state of the (paused) guest into fd from byte off (mapped-ram: pages at fixed
 * places, holes where they are zero). */
static int save_state(struct container *ct, int fd, uint64_t off, struct gw_err *err)
{
	enum hv_mig_status status = HV_MIG_NONE;
	int64_t fdset = -1;
	int r = qemu_setup_for_file(ct, 1, 0, err);
	if (r == 0)
		r = qemu_file_stream(ct, HV_MIG_OUT, fd, off, &fdset, err);
	if (r == 0)
		r = mig_wait_qemu(ct, SNAP_QEMU_TIMEOUT_MS, &status, err);
	if (r == 0 && status != HV_MIG_COMPLETED)
		r = err->code ? -err->code : gw_err_set(err, EIO, "QEMU's migration %s",
							hv_mig_status_name(status));
	if (r < 0) {
		hv_mig_cancel(ct->qmp, 5000, NULL);
		mig_wait_qemu(ct, 10000, &status, NULL);
	}
	remove_fdset(ct, fdset);
	qemu_setup_for_file(ct, 0, 0, NULL);
	return r < 0 ? gw_err_prefix(err, "save the VM's state") : 0;
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
	cleanup_free char *lb = gw_b64_encode(link, link_len);
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
	if (r == 0 && !(log64 = gw_b64_encode(log ? log : "", log_len)))
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

/* With the guest paused: QEMU's state (into the placed STATE section at state_off), the link,
 * the log and the disk into the writer. */
static int write_sections(struct container *ct, struct snap_writer *w, int state_fd,
			  uint64_t state_off, struct gw_err *err)
{
	int r = save_state(ct, state_fd, state_off, err);
	mig_trace("snapshot: QEMU's state written");
	/* hashed and flushed in the background while the rest is written */
	if (r == 0)
		r = snap_section_adopt(w, err);
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
	return snap_add_file(w, SNAP_SEC_DISK, ct->disk_path, err);
}

/* Wait (without reaping: the event loop's SIGCHLD handler does) until QEMU has exited. */
static void wait_qemu_gone(struct container *ct, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10 && ct->qemu_pid > 0; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)ct->qemu_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == ct->qemu_pid)
			return;
		mig_await(ct, -1, 10);
	}
}

static int snapshot_run(struct container *ct, const char *path, int stop_after,
			const char *key_file, json_object **result, struct gw_err *err)
{
	if (ct->st.state != CT_RUNNING || !ct->qmp || !ct->started)
		return gw_err_set(err, EINVAL, "container %s is %s, not running", ct->cfg.name,
				  ct->st.state == CT_RUNNING ? "starting" : ct_state_name(ct->st.state));
	if (path[0] != '/' || strlen(path) > 4000)
		return gw_err_set(err, EINVAL, "snapshot path must be absolute");
	int64_t t0 = gw_now_mono_ns();
	job_set_phase(ct->job, JOB_SAVE);
	int r = qemu_check_caps(ct, err);
	if (r < 0)
		return gw_err_prefix(err, "snapshot %s", ct->cfg.name);
	struct snap_writer *w = NULL;
	if ((r = snap_create(path, &w, err)) < 0)
		return r;
	/* with the host's snapshot key, the file carries an HMAC (docs/security.md) */
	if (key_file) {
		uint8_t key[SNAP_KEY_MAX];
		size_t klen;
		r = snap_key_load(key_file, key, &klen, err);
		if (r == 0)
			r = snap_set_key(w, key, klen, err);
		OPENSSL_cleanse(key, sizeof(key));
		if (r < 0) {
			snap_discard(w);
			return r;
		}
	}
	/* QEMU writes STATE in place; it gets the file write-only, as its fd sets want */
	uint64_t state_off = 0;
	char self[64];
	cleanup_close int state_fd = -1;
	if ((r = snap_section_place(w, SNAP_SEC_STATE, &state_off, err)) == 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", snap_writer_fd(w));
		if ((state_fd = open(self, O_WRONLY | O_CLOEXEC)) < 0)
			r = gw_err_sys(err, errno, "reopen %s.tmp", path);
	}
	if (r < 0) {
		snap_discard(w);
		return r;
	}
	if ((r = hv_vm_stop(ct->qmp, 5000, err)) < 0) {
		snap_discard(w);
		return gw_err_prefix(err, "pause the VM");
	}
	int64_t t_paused = gw_now_mono_ns();
	mig_trace("snapshot: paused");
	shim_set_state(ct, CT_PAUSED, "snapshot");
	r = write_sections(ct, w, state_fd, state_off, err);
	mig_trace("snapshot: CONFIG and DISK written");
	if (r == 0)
		r = snap_commit(w, err); /* frees w */
	else
		snap_discard(w);
	mig_trace("snapshot: committed");
	if (r < 0)
		gw_err_prefix(err, "snapshot %s to %s", ct->cfg.name, path);
	if (r == 0 && stop_after) {
		/* the container lives on in the file: no exit status to report for it */
		ct->main_exited = 1;
		shim_set_state(ct, CT_STOPPED, "stopped after a snapshot");
		hv_vm_quit(ct->qmp, 5000, NULL);
		wait_qemu_gone(ct, 10000);
	} else {
		/* a failed snapshot leaves the container running as before */
		struct gw_err e2 = { 0 };
		if (hv_vm_cont(ct->qmp, 5000, &e2) < 0) {
			if (r == 0)
				r = gw_err_set(err, e2.code ? e2.code : EIO, "snapshot written to %s, "
					       "but the VM did not resume: %s", path, e2.msg);
			shim_set_state(ct, CT_PAUSED, "did not resume after a snapshot");
		} else {
			shim_set_state(ct, CT_RUNNING, "");
		}
	}
	int64_t t1 = gw_now_mono_ns();
	mig_trace("snapshot: done");
	if (r < 0)
		return r;
	struct stat st;
	json_object *res = json_object_new_object();
	json_object_object_add(res, "path", json_object_new_string(path));
	int have = stat(path, &st) == 0;
	json_object_object_add(res, "bytes", json_object_new_int64(have ? (int64_t)st.st_size : 0));
	/* the file is sparse: the guest's zero pages are holes */
	json_object_object_add(res, "allocated",
			       json_object_new_int64(have ? (int64_t)st.st_blocks * 512 : 0));
	json_object_object_add(res, "ms", json_object_new_int64((t1 - t0) / 1000000));
	json_object_object_add(res, "paused_ms", json_object_new_int64((t1 - t_paused) / 1000000));
	json_object_object_add(res, "stopped", json_object_new_boolean(stop_after));
	*result = res;
	return 0;
}

/* restore.state, written by `godwit restore`: {"snapshot": absolute path, "sha256": STATE's
 * digest as the CLI verified the file's other sections against}. */
static int read_desc(const char *path, char **snap, uint8_t dig[32], struct gw_err *err)
{
	cleanup_free char *txt = NULL;
	int r = gw_read_file(path, SNAP_DESC_MAX, &txt, NULL, err);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(txt), *f, *h;
	const char *hex = NULL;
	if (json_object_object_get_ex(o, "snapshot", &f) &&
	    json_object_is_type(f, json_type_string) &&
	    json_object_object_get_ex(o, "sha256", &h) && json_object_is_type(h, json_type_string))
		hex = json_object_get_string(h);
	if (hex && (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64))
		hex = NULL;
	for (int i = 0; hex && i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &dig[i]) != 1)
			hex = NULL;
	if (hex && json_object_get_string(f)[0] == '/')
		*snap = strdup(json_object_get_string(f));
	json_object_put(o);
	if (!*snap)
		return gw_err_set(err, EINVAL, "%s: not a restore description", path);
	return 0;
}

struct verify_job {
	struct snap_reader *sr;
	int ret;
	struct gw_err err;
};

static void *verify_state(void *arg)
{
	struct verify_job *j = arg;
	j->ret = snap_verify_section(j->sr, SNAP_SEC_STATE, &j->err);
	mig_trace("restore: STATE checked");
	return NULL;
}

/* Load the VM's state from the snapshot that desc names: its STATE is verified (in threads)
 * while QEMU starts, and QEMU reads it, in place, only once it is. */
static int load_state(struct container *ct, const char *desc, struct gw_err *err)
{
	cleanup_free char *snap = NULL;
	uint8_t want[32];
	struct snap_reader *sr = NULL;
	int r = read_desc(desc, &snap, want, err);
	if (r == 0)
		r = snap_open_ex(snap, ~0u, &sr, err);	/* the CLI checked the rest */
	const struct snap_section *st = r == 0 ? snap_find(sr, SNAP_SEC_STATE) : NULL;
	if (r == 0 && memcmp(st->sha256, want, 32))
		r = gw_err_set(err, EBADMSG, "%s changed since it was verified", snap);
	if (r < 0) {
		snap_close(sr);
		return r;
	}
	int plain = snap_info(sr)->format_version < 2;
	/* QEMU's mapped-ram load reads runs of pages straight into guest RAM, with transparent
	 * huge pages 2 MiB at a time (docs/snapshot.md: 600 MiB loaded and running in 0.5-0.8 s
	 * instead of 2.2 s without THP) */
	mig_trace("restore: checking STATE");
	struct verify_job vj = { .sr = sr };
	pthread_t t;
	int threaded = pthread_create(&t, NULL, verify_state, &vj) == 0;
	if (!threaded)
		verify_state(&vj);
	/* paused (-S) until the state is in and the agent link is back */
	mig_trace("restore: starting QEMU");
	r = shim_vm_start(ct, 1, 1, err);
	mig_trace("restore: QEMU started");
	if (r == 0 && !plain)
		r = qemu_check_caps(ct, err);
	if (r == 0)
		r = qemu_setup_for_file(ct, 1, plain, err);
	if (threaded)
		pthread_join(t, NULL);
	if (r == 0 && vj.ret < 0) {
		*err = vj.err;
		r = vj.ret;
	}
	enum hv_mig_status status = HV_MIG_NONE;
	int64_t fdset = -1;
	if (r == 0)
		r = qemu_file_stream(ct, HV_MIG_IN, snap_reader_fd(sr), st->offset, &fdset, err);
	if (r == 0)
		r = mig_wait_qemu(ct, SNAP_QEMU_TIMEOUT_MS, &status, err);
	if (r == 0 && status != HV_MIG_COMPLETED)
		r = err->code ? -err->code : gw_err_set(err, EIO, "QEMU's incoming migration %s",
							hv_mig_status_name(status));
	mig_trace("restore: state loaded");
	remove_fdset(ct, fdset);
	if (r == 0)
		r = qemu_setup_for_file(ct, 0, 0, err);
	snap_close(sr);
	return r;
}

int mig_snapshot(struct container *ct, const char *path, int stop_after, const char *key_file,
		 json_object **result,
		 struct gw_err *err)
{
	/* a snapshot file holds the container's own disk, not its volumes (docs/volumes.md) */
	if (ct->cfg.volumes && ct->cfg.volumes[0])
		return gw_err_set(err, ENOTSUP, "container %s mounts volumes (%s...): snapshots do "
				  "not carry volumes; migrate it instead", ct->cfg.name,
				  ct->cfg.volumes[0]);
	if (ct->cfg.netns)
		return gw_err_set(err, ENOTSUP, "container %s lives in a network namespace of this "
				  "host's (godwit-runtime): a snapshot of it could not be restored",
				  ct->cfg.name);
	ct->access = SHIM_EXCLUSIVE;
	int r = snapshot_run(ct, path, stop_after, key_file, result, err);
	ct->access = SHIM_OPEN;
	return r;
}

int mig_restore_vm(struct container *ct, const char *state_path, const char *link_path,
		   struct gw_err *err)
{
	cleanup_free char *link = NULL;
	size_t link_len = 0;
	int r = gw_read_file(link_path, SNAP_LINK_MAX, &link, &link_len, err);
	if (r == 0 && (r = load_state(ct, state_path, err)) < 0)
		gw_err_prefix(err, "load the VM's state");
	if (r == 0 && (r = alink_restore(ct, link, link_len, true, NULL, err)) < 0)
		gw_err_prefix(err, "reconnect the agent link");
	/* the container's process is already running in the guest: never START it again */
	ct->started = 1;
	if (r == 0)
		r = hv_vm_cont(ct->qmp, 5000, err);
	mig_trace("restore: running");
	unlink(state_path);
	unlink(link_path);
	return r;
}
