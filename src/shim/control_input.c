/* What clients type: the control API's `stdin` and `resize` (docs/api.md). Input for the main
 * process that comes before its START (a `godwit run -i` attaches while the VM boots) is kept,
 * up to SHIM_STDIN_EARLY_MAX bytes, and sent right after START. A chunk the agent link cannot
 * take now (its queue is full, or a move owns the VM) is refused with the class "Busy": the
 * client sends it again later, so piped input is never dropped on the way. */
#include <string.h>

#include "godwit/util.h"
#include "shim.h"

static void reply_busy(struct shim_client *cl, const char *why)
{
	ctl_reply(cl, ctl_make_error("Busy", why));
}

static int keep_early(struct container *ct, const uint8_t *b, size_t n)
{
	if (!n) {
		ct->stdin_early.eof = 1;
		return 0;
	}
	if (ct->stdin_early.eof || n > SHIM_STDIN_EARLY_MAX - ct->stdin_early.len)
		return -1;
	uint8_t *nb = realloc(ct->stdin_early.buf, ct->stdin_early.len + n);
	if (!nb)
		return -1;
	memcpy(nb + ct->stdin_early.len, b, n);
	ct->stdin_early.buf = nb;
	ct->stdin_early.len += n;
	return 0;
}

void shim_stdin_early_flush(struct container *ct)
{
	struct gw_err err = { 0 };
	size_t off = 0;
	while (off < ct->stdin_early.len) {
		size_t n = ct->stdin_early.len - off;
		if (n > 65536)
			n = 65536;
		if (alink_send_stdin(ct, 0, ct->stdin_early.buf + off, n, &err) < 0)
			break;
		off += n;
	}
	if (off < ct->stdin_early.len)
		fprintf(stderr, "shim %s: early stdin: %zu bytes lost: %s\n", ct->cfg.name,
			ct->stdin_early.len - off, err.msg);
	else if (ct->stdin_early.eof && alink_send_stdin(ct, 0, "", 0, &err) < 0)
		fprintf(stderr, "shim %s: early stdin EOF: %s\n", ct->cfg.name, err.msg);
	free(ct->stdin_early.buf);
	memset(&ct->stdin_early, 0, sizeof(ct->stdin_early));
}

void ctl_do_stdin(struct container *ct, struct shim_client *cl, json_object *args)
{
	json_object *d;
	if (!cl->exec_chan && !cl->attached)
		return ctl_reply_error(cl, "stdin needs an attached or exec connection");
	if (!cl->exec_chan && !ct->cfg.open_stdin)
		return ctl_reply_error(cl, "the container's stdin is not open (run it with -i)");
	if (ct->access == SHIM_EXCLUSIVE)
		return reply_busy(cl, "the container is being migrated or snapshotted");
	const char *b64 = args && json_object_object_get_ex(args, "data", &d)
				  ? json_object_get_string(d) : "";
	if (strlen(b64) > 256 * 1024)
		return ctl_reply_error(cl, "stdin chunk too large");
	cleanup_free unsigned char *buf = NULL;
	size_t n;
	int d64 = gw_b64_decode(b64, &buf, &n);
	if (d64 < 0)
		return ctl_reply_error(cl, d64 == -ENOMEM ? "out of memory" : "stdin data is not base64");
	struct gw_err err = { 0 };
	int r = cl->exec_chan ? alink_send_stdin(ct, cl->exec_chan, buf, n, &err)
			      : shim_input_main(ct, buf, n, &err);
	if (r == -EAGAIN)
		return reply_busy(cl, err.msg);
	return r < 0 ? ctl_reply_error(cl, err.msg) : ctl_reply(cl, ctl_make_return(NULL));
}

int shim_input_main(struct container *ct, const void *b, size_t n, struct gw_err *err)
{
	if (ct->started)
		return alink_send_stdin(ct, 0, b, n, err);
	if (keep_early(ct, b, n) < 0)
		return gw_err_set(err, EAGAIN, "the container has not started yet");
	return 0;
}

int shim_input_main_room(struct container *ct, size_t n)
{
	if (ct->access == SHIM_EXCLUSIVE)
		return 0;
	if (!ct->started)
		return !ct->stdin_early.eof && ct->stdin_early.len + n <= SHIM_STDIN_EARLY_MAX;
	return alink_can_send(ct, n);
}

static int get_size(json_object *args, const char *key)
{
	json_object *v;
	if (!args || !json_object_object_get_ex(args, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	int64_t x = json_object_get_int64(v);
	return x < 0 || x > SHIM_TTY_SIZE_MAX ? -1 : (int)x;
}

void ctl_do_resize(struct container *ct, struct shim_client *cl, json_object *args)
{
	int rows = get_size(args, "rows"), cols = get_size(args, "cols");
	if (rows < 0 || cols < 0)
		return ctl_reply_error(cl, "resize wants \"rows\" and \"cols\", 0-10000");
	if (!cl->exec_chan && !cl->attached)
		return ctl_reply_error(cl, "resize needs an attached or exec connection");
	if (ct->access == SHIM_EXCLUSIVE)
		return reply_busy(cl, "the container is being migrated or snapshotted");
	if (!cl->exec_chan) {
		ct->winsize[0] = rows;
		ct->winsize[1] = cols;
		if (!ct->started) /* START carries it */
			return ctl_reply(cl, ctl_make_return(NULL));
	}
	struct gw_err err = { 0 };
	int r = alink_send_winsize(ct, cl->exec_chan, rows, cols, &err);
	if (r == -EAGAIN)
		return reply_busy(cl, err.msg);
	return r < 0 ? ctl_reply_error(cl, err.msg) : ctl_reply(cl, ctl_make_return(NULL));
}
