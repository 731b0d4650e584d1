/* The shim's control API (docs/api.md): attach, exec, signal, stdin, stop, start, query-status;
 * pause, resume; migrations and snapshots in control_migrate.c. Requests are untrusted: every argument is type-checked and bounded before it is acted on. */
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/hv_vm.h"
#include "godwit/logfile.h"
#include "godwit/util.h"
#include "shim.h"
#include "migrate.h"

#define MAX_ARGS 4096

void shim_send(struct shim_client *cl, json_object *msg)
{
	if (cl->fd >= 0 && ctl_send_within(cl->fd, msg, SHIM_CLIENT_SEND_MS, NULL) < 0)
		shutdown(cl->fd, SHUT_RDWR); /* the loop sees the end and closes it */
}

void ctl_reply(struct shim_client *cl, json_object *msg)
{
	shim_send(cl, msg);
	json_object_put(msg);
}

void ctl_reply_error(struct shim_client *cl, const char *desc)
{
	ctl_reply(cl, ctl_make_error("GenericError", desc));
}

/* An output event: the bytes travel base64-encoded so that any output survives JSON. */
json_object *shim_output_event_data(const char *stream, const void *data, size_t len);
json_object *shim_output_event_data(const char *stream, const void *data, size_t len)
{
	json_object *d = json_object_new_object();
	char *b64 = gw_b64_encode(data, len);
	if (b64) {
		json_object_object_add(d, "data", json_object_new_string(b64));
		free(b64);
	}
	json_object_object_add(d, "stream", json_object_new_string(stream));
	return d;
}

/* Replay the output log to a newly attached client, so a client that attaches late (a
 * foreground `run` racing the container's first line) misses nothing. */
static void replay_log(struct container *ct, struct shim_client *cl)
{
	FILE *f = fopen(ct->log_path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		struct log_record rec;
		if (line[n - 1] == '\n')
			n--;
		if (log_parse(line, (size_t)n, &rec) < 0)
			continue;
		/* the record's text plus the newline it stood for */
		char *buf = malloc(rec.len + 1);
		if (!buf)
			break;
		memcpy(buf, rec.text, rec.len);
		size_t bl = rec.len;
		if (!rec.partial)
			buf[bl++] = '\n';
		json_object *ev = ctl_make_event(
			"output", shim_output_event_data(rec.stream == LOG_STDERR ? "stderr" : "stdout",
							 buf, bl));
		free(buf);
		shim_send(cl, ev);
		json_object_put(ev);
	}
	free(line);
	fclose(f);
}

static json_object *status_json(struct container *ct)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(ct->cfg.name));
	json_object_object_add(o, "state", json_object_new_string(ct_state_name(ct->st.state)));
	json_object_object_add(o, "shim_pid", json_object_new_int(getpid()));
	json_object_object_add(o, "qemu_pid", json_object_new_int(ct->qemu_pid));
	json_object_object_add(o, "accel", json_object_new_string(hv_accel_name(ct->accel)));
	json_object_object_add(o, "started", json_object_new_boolean(ct->started));
	json_object_object_add(o, "exit_status", json_object_new_int(ct->st.exit_status));
	return o;
}

static int get_strv(json_object *args, const char *key, int required, json_object **out,
		    char *why, size_t whylen)
{
	json_object *v;
	*out = NULL;
	if (!args || !json_object_object_get_ex(args, key, &v)) {
		if (required)
			snprintf(why, whylen, "missing argument \"%s\"", key);
		return required ? -EINVAL : 0;
	}
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > MAX_ARGS) {
		snprintf(why, whylen, "\"%s\" must be an array of at most %d strings", key, MAX_ARGS);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string)) {
			snprintf(why, whylen, "\"%s\" must hold only strings", key);
			return -EINVAL;
		}
	}
	*out = v;
	return 0;
}

static void do_exec(struct container *ct, struct shim_client *cl, json_object *args)
{
	char why[160];
	json_object *argv, *env;
	if (ct->st.state != CT_RUNNING)
		return ctl_reply_error(cl, "container is not running");
	if (get_strv(args, "argv", 1, &argv, why, sizeof(why)) < 0 ||
	    get_strv(args, "env", 0, &env, why, sizeof(why)) < 0)
		return ctl_reply_error(cl, why);
	if (json_object_array_length(argv) == 0)
		return ctl_reply_error(cl, "\"argv\" must not be empty");
	if (cl->exec_chan)
		return ctl_reply_error(cl, "this connection already runs an exec session");
	int chan = exec_chan_take(&ct->chans);
	if (chan < 0)
		return ctl_reply_error(cl, "too many exec sessions (65535 are running)");
	json_object *spec = json_object_new_object();
	json_object_object_add(spec, "argv", json_object_get(argv));
	/* like docker exec: the container's env, cwd and user unless the request overrides */
	json_object *allenv = ct_strv_to_json(ct->cfg.env);
	for (size_t i = 0; env && i < json_object_array_length(env); i++) {
		json_object *kv = json_object_array_get_idx(env, i);
		const char *s = json_object_get_string(kv), *eq = strchr(s, '=');
		size_t kl = eq ? (size_t)(eq - s) + 1 : strlen(s);
		for (size_t j = 0; j < json_object_array_length(allenv); j++) {
			if (!strncmp(json_object_get_string(json_object_array_get_idx(allenv, j)), s,
				     kl)) {
				json_object_array_del_idx(allenv, j, 1);
				break;
			}
		}
		json_object_array_add(allenv, json_object_get(kv));
	}
	json_object_object_add(spec, "env", allenv);
	json_object_object_add(spec, "cwd", json_object_new_string(ct->cfg.cwd ? ct->cfg.cwd : "/"));
	if (ct->cfg.user)
		json_object_object_add(spec, "user", json_object_new_string(ct->cfg.user));
	const char *keys[] = { "cwd", "user" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_object *v;
		if (json_object_object_get_ex(args, keys[i], &v) &&
		    json_object_is_type(v, json_type_string))
			json_object_object_add(spec, keys[i], json_object_get(v));
	}
	/* exec -i / -t (docs/agent-protocol.md): a pipe or a tty for stdin, the tty's size */
	const char *flags[] = { "stdin", "tty" }, *sizes[] = { "rows", "cols" };
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		json_object *v;
		if (json_object_object_get_ex(args, flags[i], &v) &&
		    json_object_is_type(v, json_type_boolean))
			json_object_object_add(spec, flags[i], json_object_get(v));
		if (json_object_object_get_ex(args, sizes[i], &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
		    json_object_get_int64(v) <= SHIM_TTY_SIZE_MAX)
			json_object_object_add(spec, sizes[i], json_object_get(v));
	}
	struct gw_err err = { 0 };
	int r = alink_send_exec(ct, chan, spec, &err);
	json_object_put(spec);
	if (r < 0) {
		exec_chan_seen(&ct->chans, chan, 1);
		return ctl_reply_error(cl, err.msg);
	}
	cl->exec_chan = chan;
	cl->exec_deadline_ns = gw_now_mono_ns() + SHIM_EXEC_START_MS * 1000000LL;
	json_object *ret = json_object_new_object();
	json_object_object_add(ret, "chan", json_object_new_int(chan));
	ctl_reply(cl, ctl_make_return(ret));
}

void ctl_exec_answered(struct container *ct, int chan)
{
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		if (ct->clients[i].fd >= 0 && ct->clients[i].exec_chan == chan)
			ct->clients[i].exec_deadline_ns = 0;
}

/* An exec the agent has not answered at all (STARTED, output, EXIT or ERROR) within
 * SHIM_EXEC_START_MS: the guest's agent is gone or stuck (a crashed guest kernel, a VM stopped
 * from outside). The client gets an error and exit status 125, as docker gives for its own
 * failures, instead of waiting for good; anything the agent sends later on that chan is
 * dropped. */
void ctl_exec_timeouts(struct container *ct)
{
	int64_t now = gw_now_mono_ns();
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		struct shim_client *cl = &ct->clients[i];
		if (cl->fd < 0 || !cl->exec_chan || !cl->exec_deadline_ns ||
		    now < cl->exec_deadline_ns)
			continue;
		cl->exec_deadline_ns = 0;
		char msg[PATH_MAX + 160];
		snprintf(msg, sizeof(msg), "the guest agent has not started the command in %d s "
			 "(has the guest's kernel crashed? see %s)", SHIM_EXEC_START_MS / 1000,
			 ct->console_path);
		json_object *d = json_object_new_object();
		json_object_object_add(d, "message", json_object_new_string(msg));
		shim_emit(ct, cl->exec_chan, "error", d);
		d = json_object_new_object();
		/* 125: docker's status for its own errors */
		json_object_object_add(d, "status", json_object_new_int(125));
		shim_emit(ct, cl->exec_chan, "exit", d);
		cl->exec_chan = 0;
	}
}

static void do_signal(struct container *ct, struct shim_client *cl, json_object *args)
{
	json_object *v;
	int sig = SIGKILL;
	if (args && json_object_object_get_ex(args, "signal", &v))
		sig = json_object_get_int(v);
	if (sig < 1 || sig > 64)
		return ctl_reply_error(cl, "signal out of range");
	if (ct->st.state == CT_CREATED && ct->hold_start && ct->qemu_pid > 0) {
		/* nothing runs in it yet: the signal ends it, as it would end runc's init */
		ct->st.exit_status = 128 + sig;
		shim_request_stop(ct, 0);
		return ctl_reply(cl, ctl_make_return(NULL));
	}
	if (ct->st.state != CT_RUNNING)
		return ctl_reply_error(cl, "container is not running");
	struct gw_err err = { 0 };
	int chan = cl->exec_chan;
	if (args && json_object_object_get_ex(args, "chan", &v))
		chan = json_object_get_int(v);
	if (alink_send_signal(ct, chan, sig, &err) < 0)
		return ctl_reply_error(cl, err.msg);
	ctl_reply(cl, ctl_make_return(NULL));
}

/* OCI start (docs/oci-runtime.md): a container made with --hold-start runs its process */
static void do_start(struct container *ct, struct shim_client *cl)
{
	if (!ct->hold_start || ct->st.state != CT_CREATED)
		return ctl_reply_error(cl, ct->st.state == CT_CREATED ? "container is not created "
				       "to be started (godwit-runtime create)"
				       : "container is not in the created state");
	ct->hold_start = 0;
	shim_set_state(ct, CT_RUNNING, "");
	alink_start(ct);
	ctl_reply(cl, ctl_make_return(NULL));
}

/* pause / resume: the VM's vCPUs stop and go on (QEMU's stop and cont); nothing in the guest
 * runs meanwhile, its memory and connections stay */
static void do_pause(struct container *ct, struct shim_client *cl, int pause)
{
	enum ct_state from = pause ? CT_RUNNING : CT_PAUSED;
	if (ct->st.state != from || !ct->qmp)
		return ctl_reply_error(cl, pause ? "container is not running"
					     : "container is not paused");
	struct gw_err err = { 0 };
	int r = pause ? hv_vm_stop(ct->qmp, 5000, &err) : hv_vm_cont(ct->qmp, 5000, &err);
	if (r < 0)
		return ctl_reply_error(cl, err.msg);
	shim_set_state(ct, pause ? CT_PAUSED : CT_RUNNING, pause ? "paused" : "");
	ctl_reply(cl, ctl_make_return(NULL));
}

void ctl_handle(struct container *ct, struct shim_client *cl, json_object *req)
{
	json_object *v, *args = NULL;
	if (!json_object_object_get_ex(req, "execute", &v) ||
	    !json_object_is_type(v, json_type_string))
		return ctl_reply_error(cl, "request without \"execute\"");
	const char *cmd = json_object_get_string(v);
	if (json_object_object_get_ex(req, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object))
		return ctl_reply_error(cl, "\"arguments\" must be an object");

	if (!strcmp(cmd, "query-status"))
		return ctl_reply(cl, ctl_make_return(status_json(ct)));
	if (!strcmp(cmd, "attach")) {
		cl->attached = 1;
		ctl_reply(cl, ctl_make_return(NULL));
		if (args && json_object_object_get_ex(args, "logs", &v) && json_object_get_boolean(v))
			replay_log(ct, cl);
		if (ct->main_exited) {
			json_object *d = json_object_new_object();
			json_object_object_add(d, "status", json_object_new_int(ct->st.exit_status));
			json_object *ev = ctl_make_event("exit", d);
			shim_send(cl, ev);
			json_object_put(ev);
		}
		return;
	}
	if (ctl_migration_command(ct, cl, cmd, args))
		return;
	/* input waits out a move ("Busy": the client sends it again), never refused for it */
	if (!strcmp(cmd, "stdin"))
		return ctl_do_stdin(ct, cl, args);
	if (!strcmp(cmd, "resize"))
		return ctl_do_resize(ct, cl, args);
	/* a migration or snapshot job runs (job.h): only what cannot disturb it */
	if (ct->access == SHIM_EXCLUSIVE ||
	    (ct->access == SHIM_LIVE && strcmp(cmd, "exec") && strcmp(cmd, "signal"))) {
		char desc[256];
		snprintf(desc, sizeof(desc), "container %.64s is %s: \"%.32s\" must wait until that "
			 "ends", ct->cfg.name, ct->access == SHIM_LIVE ? "finishing its post-copy move"
			 : "being migrated or snapshotted", cmd);
		return ctl_reply_error(cl, desc);
	}
	if (!strcmp(cmd, "exec"))
		return do_exec(ct, cl, args);
	if (!strcmp(cmd, "signal"))
		return do_signal(ct, cl, args);
	if (!strcmp(cmd, "guest-query"))
		return ctl_do_guest_query(ct, cl, args);
	if (!strcmp(cmd, "start"))
		return do_start(ct, cl);
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume"))
		return do_pause(ct, cl, !strcmp(cmd, "pause"));
	if (!strcmp(cmd, "stop")) {
		int timeout_s = 10;
		if (args && json_object_object_get_ex(args, "timeout", &v))
			timeout_s = json_object_get_int(v);
		if (timeout_s < 0 || timeout_s > 3600)
			return ctl_reply_error(cl, "timeout out of range");
		shim_request_stop(ct, timeout_s * 1000);
		return ctl_reply(cl, ctl_make_return(NULL));
	}
	char desc[160];
	snprintf(desc, sizeof(desc), "unknown command \"%.64s\"", cmd);
	ctl_reply(cl, ctl_make_error("CommandNotFound", desc));
}
