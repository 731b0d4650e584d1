/* The control API's `guest-query` (docs/api.md): what the guest's agent tells about the
 * container from the guest's /proc (QUERY/ANSWER frames, docs/agent-protocol.md): "ps" for
 * `godwit top`, "stats" for `godwit stats`. One query at a time per connection; the answer
 * comes as a `guest-answer` event on that connection, or an error after SHIM_QUERY_MS. */
#include <string.h>

#include "godwit/frame.h"
#include "godwit/util.h"
#include "shim.h"

#define SHIM_QUERY_MS 10000

void ctl_do_guest_query(struct container *ct, struct shim_client *cl, json_object *args)
{
	json_object *v;
	const char *what = args && json_object_object_get_ex(args, "what", &v) &&
				   json_object_is_type(v, json_type_string)
				   ? json_object_get_string(v) : "";
	if (strcmp(what, "ps") && strcmp(what, "stats"))
		return ctl_reply_error(cl, "guest-query wants \"what\": \"ps\" or \"stats\"");
	if (ct->st.state != CT_RUNNING)
		return ctl_reply_error(cl, "container is not running");
	if (!ct->started)
		return ctl_reply_error(cl, "the container's process has not started yet (its VM "
				       "boots)");
	if (cl->query_id)
		return ctl_reply_error(cl, "this connection already waits for an answer");
	json_object *q = json_object_new_object();
	int id = ct->query_seq = ct->query_seq % 1000000000 + 1;
	json_object_object_add(q, "id", json_object_new_int(id));
	json_object_object_add(q, "what", json_object_new_string(what));
	struct gw_err err = { 0 };
	int r = alink_send_query(ct, q, &err);
	json_object_put(q);
	if (r < 0)
		return ctl_reply_error(cl, err.msg);
	cl->query_id = id;
	cl->query_deadline_ns = gw_now_mono_ns() + SHIM_QUERY_MS * 1000000LL;
	ctl_reply(cl, ctl_make_return(NULL));
}

static void answer(struct shim_client *cl, json_object *data)
{
	json_object *ev = ctl_make_event("guest-answer", data);
	shim_send(cl, ev);
	json_object_put(ev);
	cl->query_id = 0;
	cl->query_deadline_ns = 0;
}

void shim_query_answered(struct container *ct, json_object *ans)
{
	json_object *v;
	if (!json_object_object_get_ex(ans, "id", &v) || !json_object_is_type(v, json_type_int))
		return;
	int id = json_object_get_int(v);
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		struct shim_client *cl = &ct->clients[i];
		if (cl->fd >= 0 && id && cl->query_id == id) {
			json_object_object_del(ans, "id");
			return answer(cl, json_object_get(ans));
		}
	}
}

void ctl_query_timeouts(struct container *ct)
{
	int64_t now = gw_now_mono_ns();
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		struct shim_client *cl = &ct->clients[i];
		if (cl->fd < 0 || !cl->query_id || now < cl->query_deadline_ns)
			continue;
		json_object *d = json_object_new_object();
		json_object_object_add(d, "error", json_object_new_string(
			"the guest agent did not answer in 10 s"));
		answer(cl, d);
	}
}
