/* Post-copy's end game and its recovery (docs/migration-protocol.md §5, docs/migration.md):
 * after the switch the destination runs the guest while pages still come from the source.
 * Both shims wait here until every page has crossed. If the link breaks, both QEMUs stop in
 * postcopy-paused (nothing is lost: the source still holds the pages the destination lacks);
 * `godwit migrate --recover NAME tcp:HOST:PORT` brings a new connection to the destination's
 * listener, admitted by the move's token, and QEMU resumes the stream on it
 * (`migrate-recover` there, `migrate resume=true` here). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/migproto.h"
#include "godwit/net.h"
#include "godwit/hv_vm.h"
#include "godwit/util.h"
#include "migrate.h"

int mig_open_control(struct container *ct, const char *uri, const char *kind,
		     const char *token, struct mig_conn *cc, struct gw_err *err)
{
	int fd = mig_connect(ct, uri, err);
	if (fd < 0)
		return gw_err_prefix(err, "%s connection", strcmp(kind, MIG_CONN_DATA) ? "control"
										       : "data");
	mig_conn_init(cc, fd, 30000);
	mig_conn_in_job(ct, cc);
	json_object *o = json_object_new_object();
	json_object_object_add(o, kind, json_object_new_string(token));
	int r = mig_send_json(cc, MIG_CONFIG, o, err);
	json_object_put(o);
	if (r < 0) {
		close(fd);
		cc->fd = -1;
	}
	return r;
}

/* Admission of a second connection (control, data, --recover's): up to ADMIT_PENDING are
 * held at once, each for ADMIT_MS, and the first whose whole CONFIG (a small message) has
 * arrived is read without waiting; one that stays silent no longer holds up the others, as it
 * did when they were taken one at a time (5 s each). When the set is full the oldest goes. */
#define ADMIT_PENDING 16
#define ADMIT_MS 5000
#define ADMIT_MSG_MAX 512
#define ADMIT_POLL_MS 20

struct admit {
	int fd;
	int64_t deadline;
};

/* 1: fd holds a whole CONFIG of at most ADMIT_MSG_MAX bytes; 0: not yet; -1: drop it */
static int admit_ready(int fd)
{
	uint8_t buf[MIG_HDR_SIZE + ADMIT_MSG_MAX];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1; /* gone */
	if (n < MIG_HDR_SIZE)
		return 0;
	struct mig_hdr h;
	if (mig_hdr_decode(buf, &h, NULL) < 0 || h.type != MIG_CONFIG || h.length > ADMIT_MSG_MAX)
		return -1;
	return n >= (ssize_t)(MIG_HDR_SIZE + h.length);
}

int mig_accept_each(struct container *ct, int listen_fd, const char *kind, const char *token,
		    int timeout_ms, int n, mig_admitted_fn on_admit, void *arg,
		    struct gw_err *err)
{
	struct admit p[ADMIT_PENDING];
	int np = 0, r = -ETIMEDOUT;
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	struct mig_conn conn, *cc = &conn;
	while (r == -ETIMEDOUT && gw_now_mono_ns() < deadline) {
		/* a new connection, or a moment for the held ones to speak */
		int left = (int)((deadline - gw_now_mono_ns()) / 1000000) + 1;
		int w = mig_await_peer(ct, listen_fd, np ? ADMIT_POLL_MS : left, err);
		if (w < 0) {
			r = w;
			break;
		}
		int fd = w ? accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK) : -1;
		if (fd >= 0) {
			if (np == ADMIT_PENDING) { /* full: the oldest goes */
				close(p[0].fd);
				memmove(p, p + 1, sizeof(p[0]) * (ADMIT_PENDING - 1));
				np--;
			}
			p[np++] = (struct admit){ fd, gw_now_mono_ns() + ADMIT_MS * 1000000LL };
		}
		int64_t now = gw_now_mono_ns();
		for (int i = 0; i < np && r == -ETIMEDOUT; i++) {
			int ready = admit_ready(p[i].fd);
			if (ready == 0 && now < p[i].deadline)
				continue;
			if (ready == 1) {
				fcntl(p[i].fd, F_SETFL, 0); /* as the other connections: blocking */
				mig_sock_tune(p[i].fd);
				mig_conn_init(cc, p[i].fd, 5000);
				mig_conn_in_job(ct, cc);
				json_object *o;
				char got[33] = "";
				if (mig_recv_json(cc, MIG_CONFIG, &o, NULL) == 0) {
					mig_json_str(o, kind, got, sizeof(got), NULL);
					json_object_put(o);
				}
				if (got[0] && !strcmp(got, token)) {
					cc->timeout_ms = 30000;
					r = 0;
				} else {
					cc->fd = -1;
				}
			}
			if (r == 0) { /* admitted: out of the set, the caller's */
				p[i] = p[--np];
				r = on_admit(arg, cc, err);
				if (r == 0 && --n > 0)
					r = -ETIMEDOUT; /* the next one */
				break;
			}
			/* anything else is turned away: a wrong token, junk, silence past its time */
			close(p[i].fd);
			p[i--] = p[--np];
		}
	}
	for (int i = 0; i < np; i++)
		close(p[i].fd);
	if (r == -ETIMEDOUT)
		return gw_err_set(err, ETIMEDOUT, "the source did not open its %s connection",
				  strcmp(kind, MIG_CONN_DATA) ? "control" : "data");
	return r;
}

static int keep_one(void *arg, struct mig_conn *cc, struct gw_err *err)
{
	(void)err;
	*(struct mig_conn *)arg = *cc;
	return 0;
}

int mig_accept_control(struct container *ct, int listen_fd, const char *kind, const char *token,
		       int timeout_ms, struct mig_conn *cc, struct gw_err *err)
{
	cc->fd = -1;
	return mig_accept_each(ct, listen_fd, kind, token, timeout_ms, 1, keep_one, cc, err);
}

/* migration.json in post-copy: the phase, QEMU's status, pages still to come */
static void publish(struct container *ct, const char *status, const char *error,
		    const struct hv_mig_stats *q)
{
	json_object *d = json_object_new_object();
	json_object_object_add(d, "status", json_object_new_string(status));
	json_object_object_add(d, "phase", json_object_new_string("postcopy"));
	if (q && q->has_ram) {
		json_object_object_add(d, "transferred", json_object_new_int64((int64_t)q->transferred));
		json_object_object_add(d, "remaining", json_object_new_int64((int64_t)q->remaining));
		json_object_object_add(d, "postcopy_requests",
				       json_object_new_int64((int64_t)q->postcopy_requests));
	}
	if (error && *error)
		json_object_object_add(d, "error", json_object_new_string(error));
	mig_publish_status(ct, d);
	json_object_put(d);
}

/* migrate-recover (control_migrate.c) left the destination's address in ct->asks */
static int take_request(struct container *ct, char *uri, size_t len)
{
	if (!ct->asks.recover_uri[0])
		return 0;
	snprintf(uri, len, "%s", ct->asks.recover_uri);
	ct->asks.recover_uri[0] = '\0';
	return 1;
}

/* ... and is answered once the attempt has ended */
static void answer_recover(struct container *ct, const char *uri, const struct gw_err *e)
{
	struct shim_client *cl = ct->asks.recover_client;
	ct->asks.recover_client = NULL;
	if (!cl)
		return;
	if (e) {
		char desc[GW_ERR_MSG_MAX + 32];
		snprintf(desc, sizeof(desc), "recover failed (still paused): %s", e->msg);
		return ctl_reply_error(cl, desc);
	}
	json_object *res = json_object_new_object();
	json_object_object_add(res, "uri", json_object_new_string(uri));
	json_object_object_add(res, "status", json_object_new_string("postcopy-active"));
	ctl_reply(cl, ctl_make_return(res));
}

/* A link that just came back may refuse the first connections: the neighbour entry the
 * kernel was still probing while the link was down fails a moment later, and a connect queued
 * behind it gets EHOSTUNREACH (reproduced on a veth pair: down 2.2–2.5 s, then up). Recovery
 * is exactly the moment after a flap, so the connect is tried again for RECOVER_CONNECT_MS. */
#define RECOVER_CONNECT_MS 15000

static int transient_connect_error(int code)
{
	return code == EHOSTUNREACH || code == ENETUNREACH || code == ECONNREFUSED ||
	       code == ETIMEDOUT;
}

static int recover_connect(struct container *ct, const char *uri, const char *token,
			   struct mig_conn *cc, struct gw_err *err)
{
	int64_t deadline = gw_now_mono_ns() + (int64_t)RECOVER_CONNECT_MS * 1000000;
	for (int tries = 1;; tries++) {
		int r = mig_open_control(ct, uri, MIG_CONN_CONTROL, token, cc, err);
		if (r == 0 || !transient_connect_error(err->code) || gw_now_mono_ns() > deadline)
			return r < 0 && tries > 1 ? gw_err_prefix(err, "%d tries in %d s", tries,
								  RECOVER_CONNECT_MS / 1000)
					    : r;
		char t[GW_ERR_MSG_MAX + 64];
		snprintf(t, sizeof(t), "source: recover connect try %d: %s", tries, err->msg);
		mig_trace(t);
		*err = (struct gw_err){ 0 };
		mig_await_qemu(ct, 500); /* the control socket is served meanwhile */
	}
}

static int recover_source(struct container *ct, const char *uri, const char *token,
			  struct gw_err *err)
{
	struct mig_conn cc = { .fd = -1 };
	int r = recover_connect(ct, uri, token, &cc, err);
	/* the destination answers once its QEMU listens on the connection (migrate-recover) */
	if (r == 0)
		r = mig_recv_prepare(&cc, err);
	if (r == 0)
		r = mig_qemu_stream(ct, HV_MIG_OUT, cc.fd, MIG_STREAM_RESUME, err);
	if (cc.fd >= 0)
		close(cc.fd); /* QEMU has its own copy */
	return r;
}

/* The destination shim speaks on the control connection during post-copy only to say its
 * side failed (ABORT: its QEMU exited or failed, the guest is lost), and the connection's end
 * (EOF) means the shim itself is gone, with the listener --recover needs: either ends the move.
 * A link that merely broke shows as silence or a socket error (keepalive): after an error the
 * connection is not looked at again, and the move waits for --recover. */
static int destination_gone(struct mig_conn *ctl, struct gw_err *err)
{
	char c;
	if (!ctl || ctl->fd < 0)
		return 0;
	ssize_t n = recv(ctl->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n == 0)
		return gw_err_set(err, ECONNRESET, "its shim closed the control connection");
	json_object *m = NULL;
	int r = -1;
	if (n > 0) {
		ctl->timeout_ms = 2000;
		r = mig_recv_json(ctl, MIG_COMMIT_ACK, &m, err);
		json_object_put(m);
	}
	if (r == -ECONNABORTED)
		return r;
	/* a socket error (the link) or anything but ABORT: stop listening there */
	close(ctl->fd);
	ctl->fd = -1;
	return 0;
}

int mig_src_postcopy_finish(struct container *ct, struct mig_conn *ctl, const char *token,
			    struct gw_err *err)
{
	char uri[300];
	int paused = 0;
	int64_t published = 0;
	ct->asks.switched = 1; /* migrate-cancel is refused from here on */
	for (;;) {
		struct hv_mig_stats q;
		int r = hv_mig_query(ct->qmp, &q, 5000, err);
		if (r < 0)
			return r;
		const char *why = q.error_desc;
		if (q.status == HV_MIG_POSTCOPY_ACTIVE &&
		    gw_now_mono_ns() - published > 1000000000LL) {
			publish(ct, q.status_name, NULL, &q);
			published = gw_now_mono_ns();
		}
		if (q.status == HV_MIG_COMPLETED)
			return 0;
		if (q.status == HV_MIG_FAILED || q.status == HV_MIG_CANCELLED)
			return gw_err_set(err, EIO, "QEMU's migration %s%s%s", q.status_name,
					  why[0] ? ": " : "", why);
		if (q.status == HV_MIG_POSTCOPY_PAUSED) {
			if (destination_gone(ctl, err) < 0)
				return gw_err_prefix(err, "the destination failed during post-copy");
			if (!paused) {
				char d[200];
				snprintf(d, sizeof(d), "post-copy paused, link broken: godwit "
					 "migrate --recover %s tcp:HOST:PORT", ct->cfg.name);
				shim_set_state(ct, CT_MIGRATING, d);
				publish(ct, "postcopy-paused", why, NULL);
				mig_trace("source: post-copy paused");
				ct->asks.paused = paused = 1;
			}
			if (take_request(ct, uri, sizeof(uri))) {
				struct gw_err e = { 0 };
				publish(ct, "postcopy-recovering", NULL, NULL);
				if (recover_source(ct, uri, token, &e) < 0) {
					publish(ct, "postcopy-paused", e.msg, NULL);
					answer_recover(ct, uri, &e);
				} else {
					mig_trace("source: post-copy resumed");
					shim_set_state(ct, CT_MIGRATING, "post-copy");
					publish(ct, "postcopy-active", NULL, NULL);
					ct->asks.paused = paused = 0;
					answer_recover(ct, uri, NULL);
				}
			}
		}
		/* QEMU's MIGRATION event (completed, paused) wakes us at once */
		mig_await_qemu(ct, 50);
	}
}

int mig_dst_postcopy_finish(struct container *ct, int listen_fd, const char *token,
			    struct gw_err *err)
{
	struct hv_mig_stats q;
	int paused = 0, r;
	while ((r = hv_mig_query(ct->qmp, &q, 5000, err)) == 0) {
		const char *why = q.error_desc;
		if (q.status == HV_MIG_COMPLETED) {
			mig_trace("destination: post-copy completed");
			if (paused)
				shim_set_state(ct, CT_RUNNING, "");
			return 0;
		}
		if (q.status == HV_MIG_FAILED || q.status == HV_MIG_CANCELLED)
			return gw_err_set(err, EIO, "post-copy %s%s%s: the guest is lost",
					  q.status_name, why[0] ? ": " : "", why);
		if (q.status != HV_MIG_POSTCOPY_PAUSED) {
			/* the guest runs here: keep its output flowing until QEMU says more */
			mig_await_qemu(ct, 50);
			continue;
		}
		if (!paused) {
			shim_set_state(ct, CT_RUNNING, "post-copy paused, link broken: waiting for "
				       "the source's migrate --recover");
			publish(ct, "postcopy-paused", why, NULL);
			mig_trace("destination: post-copy paused");
			paused = 1;
		}
		struct mig_conn cc = { .fd = -1 };
		struct gw_err e = { 0 };
		r = mig_accept_control(ct, listen_fd, MIG_CONN_CONTROL, token, 1000, &cc, &e);
		if (r == -EINTR)
			return gw_err_set(err, EINTR, "%s", e.msg);
		if (r < 0)
			continue;
		r = mig_qemu_stream(ct, HV_MIG_RECOVER, cc.fd, 0, &e);
		if (r == 0)
			r = mig_send_prepare(&cc, NULL, NULL, &e);
		else
			mig_send_prepare(&cc, "recover-failed", e.msg, NULL);
		close(cc.fd);
		if (r == 0) {
			mig_trace("destination: post-copy recovering");
			shim_set_state(ct, CT_RUNNING, "");
			publish(ct, "postcopy-active", NULL, NULL);
			paused = 0;
		}
	}
	return r;
}
