/* The shim's end of the agent link (docs/agent-protocol.md): connects to the virtio-serial
 * port's socket, starts the container when the agent says HELLO, turns output into log
 * records and events, and relays exec, signals, stdin and shutdown. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "godwit/frame.h"
#include "godwit/logfile.h"
#include "godwit/mount.h"
#include "godwit/util.h"
#include "shim.h"
#include "migrate.h"

struct alink {
	int fd;
	struct gw_link link;
	struct alink_hold *hold; /* a migrated guest's output held until the link state arrives */
	int64_t rx_ns;	/* arrival time of the held bytes being replayed (0: now) */
	enum alink_mode mode;
	int trace_next;	/* GODWIT_MIG_TRACE: say when the first read after a restore came */
	int64_t ack_due_ns; /* monotonic: acknowledge the output owed by then (0: none owed) */
	/* a migrated link restored without a RESYNC (alink_restore): WATCH until a frame shows
	 * the stream whole or lost, SENT from the RESYNC a loss (or silence) brought to HELLO */
	enum alink_sync { SYNC_DONE, SYNC_WATCH, SYNC_SENT } sync;
	int64_t sync_due_ns; /* WATCH: monotonic time of the RESYNC if no frame came by then */
	uint32_t sync_from;  /* WATCH: last_recv as restored */
	int lost;	     /* a stream error dropped bytes since the restore */
};

/* The agent's output is acknowledged lazily (gw_link_set_lazy_ack), at the latest this long
 * after it came: the agent's queue of unacknowledged frames stays short */
#define ALINK_ACK_DELAY_NS (10 * 1000000LL)

/* A migrated link whose agent has sent nothing that shows the stream whole this long after the
 * restore gets its RESYNC anyway: a frame lost at the switch is then resent at the latest this
 * late, even by a guest that prints nothing more */
#define ALINK_SYNC_WAIT_NS (1000 * 1000000LL)

json_object *shim_output_event_data(const char *stream, const void *data, size_t len);

int alink_open(struct container *ct, struct gw_err *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(ct->agent_path) >= sizeof(a.sun_path))
		return gw_err_set(err, ENAMETOOLONG, "agent socket path too long");
	strcpy(a.sun_path, ct->agent_path);
	if (!ct->agent) {
		ct->agent = calloc(1, sizeof(*ct->agent));
		if (!ct->agent)
			return gw_err_set(err, ENOMEM, "out of memory");
		ct->agent->fd = -1;
		gw_link_init(&ct->agent->link);
		gw_link_set_lazy_ack(&ct->agent->link, true);
	}
	int64_t deadline = gw_now_mono_ns() + 10000000000LL;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return gw_err_sys(err, errno, "socket");
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			ct->agent->fd = fd;
			gw_link_reset_io(&ct->agent->link);
			return 0;
		}
		int e = errno;
		close(fd);
		if (gw_now_mono_ns() > deadline)
			return gw_err_sys(err, e, "connect %s", ct->agent_path);
		poll(NULL, 0, 20);
	}
}

/* While the hold thread owns the socket (alink_hold until alink_restore) nobody else reads
 * or writes it: the link has no fd. */
int alink_fd(struct container *ct)
{
	return ct->agent && !ct->agent->hold && ct->agent->mode != ALINK_FROZEN ? ct->agent->fd
										 : -1;
}

int alink_wants_write(struct container *ct)
{
	return alink_fd(ct) >= 0 && ct->agent->mode == ALINK_LIVE &&
	       gw_link_want_write(&ct->agent->link);
}

/* Read what QEMU already delivered (waiting wait_ms for more each round), so the link's
 * last_recv covers it; writes only if the mode allows. */
static void take_in(struct container *ct, int wait_ms, int rounds)
{
	for (int i = 0; i < rounds && ct->agent && ct->agent->fd >= 0 &&
			ct->agent->mode != ALINK_FROZEN; i++) {
		struct pollfd pfd = { .fd = ct->agent->fd, .events = POLLIN };
		if (poll(&pfd, 1, wait_ms) <= 0 || alink_on_readable(ct) == -EPIPE)
			break;
	}
}

void alink_set_mode(struct container *ct, enum alink_mode mode)
{
	if (!ct->agent)
		return;
	/* freezing: the stopped guest's last output first, without waiting (QEMU wrote what
	 * the guest had kicked before it stopped) */
	if (mode == ALINK_FROZEN)
		take_in(ct, 0, 64);
	ct->agent->mode = mode;
	if (mode == ALINK_LIVE)
		alink_on_writable(ct); /* what was queued meanwhile (ACKs, exec) goes out now */
}

int alink_on_writable(struct container *ct)
{
	if (!ct->agent || ct->agent->fd < 0 || ct->agent->mode != ALINK_LIVE)
		return 0;
	return gw_link_flush(&ct->agent->link, ct->agent->fd, NULL);
}

/* The link takes the agent's frames only in order whenever it is not back to SYNC_DONE. */
static void set_sync(struct alink *a, enum alink_sync sync)
{
	a->sync = sync;
	gw_link_set_in_order(&a->link, sync != SYNC_DONE);
}

/* "I have everything up to N from you": the agent answers HELLO and resends the rest; until
 * the HELLO, frames are taken only in order (the stale ones the resend repeats are dropped) */
static int send_resync(struct container *ct, struct gw_err *err)
{
	struct alink *a = ct->agent;
	int r = gw_link_send_sync(&a->link, GW_FRAME_RESYNC, err);
	if (r < 0)
		return r;
	set_sync(a, SYNC_SENT);
	a->lost = 0;
	return 0;
}

/* A link restored without a RESYNC (docs/agent-protocol.md section 4): a frame lost at the
 * switch shows as bytes skipped, a stream error or a gap, and brings the RESYNC at once; so
 * does silence until sync_due_ns. The first frame taken in order shows the stream whole, and
 * the link goes back to the normal rules. */
static int sync_check(struct container *ct, struct gw_err *err)
{
	struct alink *a = ct->agent;
	if (!a || a->sync != SYNC_WATCH)
		return 0;
	if (a->lost || gw_link_lost_some(&a->link) || gw_now_mono_ns() >= a->sync_due_ns) {
		mig_trace("destination: agent link RESYNC (a frame lost, or none came)");
		return send_resync(ct, err);
	}
	if (a->link.last_recv != a->sync_from)
		set_sync(a, SYNC_DONE);
	return 0;
}

static int send_json(struct container *ct, uint16_t type, int chan, json_object *o,
		     struct gw_err *err)
{
	if (!ct->agent || ct->agent->fd < 0)
		return gw_err_set(err, ENOTCONN, "the agent link is not connected");
	int r = gw_link_send_json(&ct->agent->link, type, (uint16_t)chan, o, err);
	if (r == 0)
		alink_on_writable(ct);
	return r;
}

/* START's "mounts": each volume by its disk's serial (fill_volumes' order, hv.h) and where
 * the agent mounts it (docs/agent-protocol.md); NULL on a bad spec */
static json_object *start_mounts(struct container *ct, struct gw_err *err)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	int n;
	if (gw_mounts_parse(ct->cfg.volumes, m, &n, err) < 0)
		return NULL;
	json_object *a = json_object_new_array();
	for (int i = 0; i < n; i++) {
		json_object *e = json_object_new_object();
		char serial[24];
		snprintf(serial, sizeof(serial), "gwvol%d", i);
		json_object_object_add(e, "serial", json_object_new_string(serial));
		json_object_object_add(e, "target", json_object_new_string(m[i].target));
		json_object_object_add(e, "ro", json_object_new_boolean(m[i].ro));
		json_object_array_add(a, e);
	}
	return a;
}

/* START's "rlimits" from the config's "RLIMIT_X=SOFT:HARD" (a malformed one is left out:
 * the agent checks the names) */
static json_object *start_rlimits(const struct container *ct)
{
	if (!ct->cfg.rlimits || !ct->cfg.rlimits[0])
		return NULL;
	json_object *a = json_object_new_array();
	for (size_t i = 0; ct->cfg.rlimits[i]; i++) {
		char type[32];
		unsigned long long soft, hard;
		if (sscanf(ct->cfg.rlimits[i], "%31[A-Z_]=%llu:%llu", type, &soft, &hard) != 3)
			continue;
		json_object *e = json_object_new_object();
		json_object_object_add(e, "type", json_object_new_string(type));
		json_object_object_add(e, "soft", json_object_new_uint64(soft));
		json_object_object_add(e, "hard", json_object_new_uint64(hard));
		json_object_array_add(a, e);
	}
	return a;
}

static int send_start(struct container *ct)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "argv", ct_strv_to_json(ct->cfg.argv));
	json_object_object_add(o, "env", ct_strv_to_json(ct->cfg.env));
	json_object_object_add(o, "cwd", json_object_new_string(ct->cfg.cwd ? ct->cfg.cwd : "/"));
	if (ct->cfg.user)
		json_object_object_add(o, "user", json_object_new_string(ct->cfg.user));
	json_object_object_add(o, "hostname", json_object_new_string(
		ct->cfg.hostname ? ct->cfg.hostname : ct->cfg.name));
	if (ct->cfg.tty)
		json_object_object_add(o, "tty", json_object_new_boolean(1));
	if (ct->cfg.open_stdin)
		json_object_object_add(o, "stdin", json_object_new_boolean(1));
	if (ct->winsize[0] || ct->winsize[1]) { /* a client's resize that came before START */
		json_object_object_add(o, "rows", json_object_new_int(ct->winsize[0]));
		json_object_object_add(o, "cols", json_object_new_int(ct->winsize[1]));
	}
	json_object *rl = start_rlimits(ct);
	if (rl)
		json_object_object_add(o, "rlimits", rl);
	json_object *net = ct->cfg.netns ? shim_netns_start_json(ct) : shim_net_start_json(ct);
	if (net)
		json_object_object_add(o, "net", net);
	struct gw_err err = { 0 };
	json_object *mounts = start_mounts(ct, &err);
	if (!mounts) {
		json_object_put(o);
		fprintf(stderr, "shim %s: START: %s\n", ct->cfg.name, err.msg);
		return -err.code;
	}
	if (json_object_array_length(mounts))
		json_object_object_add(o, "mounts", mounts);
	else
		json_object_put(mounts);
	int r = send_json(ct, GW_FRAME_START, 0, o, &err);
	json_object_put(o);
	if (r < 0) {
		fprintf(stderr, "shim %s: START: %s\n", ct->cfg.name, err.msg);
	} else {
		ct->started = 1;
		shim_stdin_early_flush(ct);
	}
	return r;
}

static void on_output(struct container *ct, const struct gw_frame *f)
{
	const char *stream = f->hdr.type == GW_FRAME_STDERR ? "stderr" : "stdout";
	if (f->hdr.chan == 0) {
		struct gw_err err = { 0 };
		if (log_append(ct->log_fd,
			       f->hdr.type == GW_FRAME_STDERR ? LOG_STDERR : LOG_STDOUT,
			       ct->agent->rx_ns ? ct->agent->rx_ns : gw_now_real_ns(), (const char *)f->payload, f->hdr.len, &err) < 0)
			fprintf(stderr, "shim %s: %s\n", ct->cfg.name, err.msg);
		shim_log_rotate_check(ct);
		shim_stdio_write(ct, f->hdr.type == GW_FRAME_STDERR ? 2 : 1, f->payload,
				 f->hdr.len);
	}
	shim_emit(ct, f->hdr.chan, "output",
		  shim_output_event_data(stream, f->payload, f->hdr.len));
}

static int json_int(const struct gw_frame *f, const char *key, int dflt)
{
	json_object *o, *v;
	int val = dflt;
	if (gw_frame_json(f, &o, NULL) < 0)
		return dflt;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		val = json_object_get_int(v);
	json_object_put(o);
	return val;
}

static void on_frame(struct container *ct, const struct gw_frame *f)
{
	if (f->hdr.chan) {
		ctl_exec_answered(ct, f->hdr.chan);
		exec_chan_seen(&ct->chans, f->hdr.chan, f->hdr.type == GW_FRAME_EXIT);
	}
	switch (f->hdr.type) {
	case GW_FRAME_HELLO: {
		uint32_t last, next;
		if (gw_link_parse_sync(f, &last, &next, NULL) == 0)
			gw_link_peer_reset(&ct->agent->link, last, 0, NULL);
		if (ct->agent->sync == SYNC_SENT) /* the resend follows: back to normal */
			set_sync(ct->agent, SYNC_DONE);
		ct->agent_hello = 1;
		alink_start(ct);
		break;
	}
	case GW_FRAME_STDOUT:
	case GW_FRAME_STDERR:
		on_output(ct, f);
		break;
	case GW_FRAME_EXIT: {
		int status = json_int(f, "status", 255);
		if (status < 0 || status > 255)
			status = 255;
		json_object *d = json_object_new_object();
		json_object_object_add(d, "status", json_object_new_int(status));
		if (f->hdr.chan == 0) {
			ct->main_exited = 1;
			ct->st.exit_status = status;
			/* the agent powers off by itself; make sure the VM goes down regardless */
			if (!ct->quit_deadline_ns)
				ct->quit_deadline_ns = gw_now_mono_ns() + 15000000000LL;
		}
		shim_emit(ct, f->hdr.chan, "exit", d);
		break;
	}
	case GW_FRAME_ERROR: {
		json_object *o, *v;
		if (gw_frame_json(f, &o, NULL) < 0)
			break;
		const char *msg = json_object_object_get_ex(o, "message", &v)
					  ? json_object_get_string(v) : "agent error";
		json_object *d = json_object_new_object();
		json_object_object_add(d, "message", json_object_new_string(msg));
		shim_emit(ct, f->hdr.chan, "error", d);
		if (f->hdr.chan == 0) {
			char line[512];
			int n = snprintf(line, sizeof(line), "godwit: %s\n", msg);
			log_append(ct->log_fd, LOG_STDERR, gw_now_real_ns(), line,
				   (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1), NULL);
			shim_log_rotate_check(ct);
		}
		json_object_put(o);
		break;
	}
	case GW_FRAME_ANSWER: {
		json_object *o;
		if (gw_frame_json(f, &o, NULL) == 0) {
			shim_query_answered(ct, o);
			json_object_put(o);
		}
		break;
	}
	default:
		break; /* STARTED, PONG, ACK: nothing to do */
	}
}

int alink_on_readable(struct container *ct)
{
	struct alink *a = ct->agent;
	if (!a || a->fd < 0 || a->mode == ALINK_FROZEN)
		return 0;
	struct gw_err err = { 0 };
	for (int i = 0; i < 64; i++) {
		ssize_t n = gw_link_read(&a->link, a->fd, &err);
		if (n == -EAGAIN)
			break;
		if (n == 0)
			return -EPIPE;
		if (n > 0 && a->trace_next) {
			a->trace_next = 0;
			mig_trace("the agent's first bytes after its link was restored");
		}
		if (n < 0) {
			fprintf(stderr, "shim %s: agent link: %s\n", ct->cfg.name, err.msg);
			gw_link_reset_io(&a->link);
			a->lost = 1;
			break;
		}
	}
	if (sync_check(ct, &err) < 0)
		fprintf(stderr, "shim %s: agent link: %s\n", ct->cfg.name, err.msg);
	struct gw_frame f;
	while (gw_link_next(&a->link, &f) > 0) {
		on_frame(ct, &f);
		gw_frame_free(&f);
		if (!ct->agent)
			return 0;
	}
	if (!a->ack_due_ns && gw_link_ack_owed(&a->link))
		a->ack_due_ns = gw_now_mono_ns() + ALINK_ACK_DELAY_NS;
	alink_on_writable(ct);
	return 0;
}

void alink_timeout(struct container *ct, int *timeout_ms)
{
	if (ct->agent && ct->agent->ack_due_ns)
		gw_timeout_lower(timeout_ms, ct->agent->ack_due_ns);
	if (ct->agent && ct->agent->sync == SYNC_WATCH)
		gw_timeout_lower(timeout_ms, ct->agent->sync_due_ns);
}

void alink_tick(struct container *ct)
{
	struct alink *a = ct->agent;
	if (a && a->sync == SYNC_WATCH && alink_fd(ct) >= 0) {
		struct gw_err err = { 0 };
		if (sync_check(ct, &err) < 0)
			fprintf(stderr, "shim %s: agent link: %s\n", ct->cfg.name, err.msg);
		if (a->sync == SYNC_SENT) /* the RESYNC silence brought */
			alink_on_writable(ct);
	}
	if (!a || !a->ack_due_ns)
		return;
	if (!gw_link_ack_owed(&a->link)) {
		a->ack_due_ns = 0; /* an ack went out on a frame of ours */
	} else if (gw_now_mono_ns() >= a->ack_due_ns) {
		a->ack_due_ns = 0;
		gw_link_ack_now(&a->link);
		alink_on_writable(ct);
	}
}

int alink_start(struct container *ct)
{
	if (ct->started || !ct->agent_hello || ct->st.state != CT_RUNNING)
		return 0;
	return send_start(ct);
}

int alink_send_exec(struct container *ct, int chan, json_object *spec, struct gw_err *err)
{
	return send_json(ct, GW_FRAME_EXEC, chan, spec, err);
}

int alink_send_signal(struct container *ct, int chan, int sig, struct gw_err *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "signal", json_object_new_int(sig));
	int r = send_json(ct, GW_FRAME_SIGNAL, chan, o, err);
	json_object_put(o);
	return r;
}

int alink_send_query(struct container *ct, json_object *q, struct gw_err *err)
{
	return send_json(ct, GW_FRAME_QUERY, 0, q, err);
}

int alink_can_send(struct container *ct, size_t len)
{
	return ct->agent && ct->agent->fd >= 0 && gw_link_can_send(&ct->agent->link, len);
}

int alink_send_winsize(struct container *ct, int chan, int rows, int cols, struct gw_err *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "rows", json_object_new_int(rows));
	json_object_object_add(o, "cols", json_object_new_int(cols));
	int r = send_json(ct, GW_FRAME_WINSIZE, chan, o, err);
	json_object_put(o);
	return r;
}

int alink_send_stdin(struct container *ct, int chan, const void *data, size_t len,
		     struct gw_err *err)
{
	if (!ct->agent || ct->agent->fd < 0)
		return gw_err_set(err, ENOTCONN, "the agent link is not connected");
	int r = gw_link_send(&ct->agent->link, GW_FRAME_STDIN, (uint16_t)chan, data, len, err);
	if (r == 0)
		alink_on_writable(ct);
	return r;
}


int alink_send_shutdown(struct container *ct, int grace_ms, struct gw_err *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "grace_ms", json_object_new_int(grace_ms));
	int r = send_json(ct, GW_FRAME_SHUTDOWN, 0, o, err);
	json_object_put(o);
	return r;
}

void alink_close(struct container *ct)
{
	if (!ct->agent)
		return;
	if (ct->agent->hold)
		alink_held_free(alink_hold_stop(ct->agent->hold));
	if (ct->agent->fd >= 0)
		close(ct->agent->fd);
	gw_link_free(&ct->agent->link);
	free(ct->agent);
	ct->agent = NULL;
}

int alink_save(struct container *ct, uint8_t **buf, size_t *len, struct gw_err *err)
{
	if (!ct->agent)
		return gw_err_set(err, ENOTCONN, "no agent link to save");
	/* everything QEMU already delivered, so the saved last_recv covers it (a frozen link
	 * took it in as it froze). The migration pumped the link until the guest stopped: only
	 * QEMU's last bytes can be in flight, so a short wait suffices; whatever it misses the
	 * agent resends after RESYNC */
	take_in(ct, 2, 20);
	return gw_link_save(&ct->agent->link, buf, len, err);
}

int alink_hold(struct container *ct, struct gw_err *err)
{
	int r = alink_open(ct, err);
	if (r < 0)
		return r;
	ct->agent->hold = alink_hold_start(ct->agent->fd, err);
	return ct->agent->hold ? 0 : -err->code;
}

/* Feed the held chunks through the restored link in order, each frame's output stamped with
 * the time its bytes reached this host. */
static void replay_held(struct container *ct, struct alink_held *list)
{
	struct alink *a = ct->agent;
	for (struct alink_held *c = list; c && ct->agent; c = c->next) {
		struct gw_err err = { 0 };
		if (gw_link_feed(&a->link, c->data, c->len, &err) < 0) {
			/* a torn frame: a RESYNC has the agent resend it */
			fprintf(stderr, "shim %s: held agent output: %s\n", ct->cfg.name, err.msg);
			gw_link_reset_io(&a->link);
			a->lost = 1;
		}
		a->rx_ns = c->rx_ns;
		struct gw_frame f;
		while (ct->agent && gw_link_next(&a->link, &f) > 0) {
			on_frame(ct, &f);
			gw_frame_free(&f);
		}
		if (ct->agent)
			a->rx_ns = 0;
	}
}

int alink_restore(struct container *ct, const void *buf, size_t len, bool resync,
		  struct alink_release *rel, struct gw_err *err)
{
	struct alink_held *held = NULL;
	if (rel)
		*rel = (struct alink_release){ 0 };
	int r = 0;
	if (ct->agent && ct->agent->hold) {
		held = alink_hold_stop(ct->agent->hold);
		ct->agent->hold = NULL;
	} else if ((r = alink_open(ct, err)) < 0) {
		return r;
	}
	gw_link_free(&ct->agent->link);
	gw_link_init(&ct->agent->link);
	if ((r = gw_link_load(&ct->agent->link, buf, len, err)) < 0) {
		alink_held_free(held);
		return r;
	}
	gw_link_set_lazy_ack(&ct->agent->link, true);
	ct->agent->ack_due_ns = 0;
	ct->agent->lost = 0;
	/* a migrated link: in order from the first byte the guest sent here, held ones included */
	set_sync(ct->agent, resync ? SYNC_DONE : SYNC_WATCH);
	ct->agent->sync_from = ct->agent->link.last_recv;
	ct->agent->sync_due_ns = gw_now_mono_ns() + ALINK_SYNC_WAIT_NS;
	if (held) {
		char t[64], msg[160];
		gw_fmt_rfc3339(held->rx_ns, t);
		size_t n = 0;
		for (struct alink_held *c = held; c; c = c->next)
			n++;
		snprintf(msg, sizeof(msg), "destination: %zu held reads, the first at %s", n, t);
		mig_trace(msg);
	}
	replay_held(ct, held);
	if (rel) {
		for (struct alink_held *c = held; c; c = c->next)
			rel->reads++;
		rel->first_rx_ns = held ? held->rx_ns : 0;
		rel->released_ns = gw_now_real_ns();
	}
	alink_held_free(held);
	if (!ct->agent)
		return gw_err_set(err, EPIPE, "the agent link closed");
	ct->agent->trace_next = 1;
	if (resync) {
		if ((r = send_resync(ct, err)) < 0)
			return r;
	} else {
		/* what we sent that the agent may lack goes again (it drops what it has) */
		if ((r = gw_link_peer_reset(&ct->agent->link, ct->agent->link.peer_acked, 0, err)) < 0)
			return r;
		if ((r = sync_check(ct, err)) < 0)
			return r;
	}
	alink_on_writable(ct);
	return 0;
}
