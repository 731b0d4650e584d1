/* The control API's migration commands (docs/api.md): `migrate` and `snapshot` start a job
 * that runs in the shim; while a move runs here as its source, its waits keep serving the
 * control socket, and these ask things of it:
 *   query-migration       the figures it last published (migration.json)
 *   migrate-cancel        before the commit: the source runs on
 *   migrate-postcopy-now  switch to post-copy at the engine's next turn
 *   migrate-recover       a post-copy move paused by a broken link resumes over a new
 *                         connection; answered when that attempt ends
 * The engine (mig_source*.c, mig_recover.c) fills ct->asks with what it may be asked and
 * acts on what was asked. */
#include <string.h>

#include "godwit/util.h"
#include "shim.h"
#include "migrate.h"

/* migrate and snapshot run in the shim; their waits serve other clients, never this one */
static void do_migrate(struct container *ct, struct shim_client *cl, json_object *args)
{
	struct gw_err err = { 0 };
	json_object *res = NULL;
	ct->job_client = cl;
	int r = mig_source_run(ct, cl, args, &res, &err);
	ct->job_client = NULL;
	ctl_asks_end(ct, r < 0 ? err.msg : "the move completed");
	if (r < 0)
		return ctl_reply_error(cl, err.msg);
	return ctl_reply(cl, ctl_make_return(res));
}

static void do_snapshot(struct container *ct, struct shim_client *cl, json_object *args)
{
	json_object *v;
	struct gw_err err = { 0 };
	json_object *res = NULL, *p;
	if (!args || !json_object_object_get_ex(args, "path", &p) ||
	    !json_object_is_type(p, json_type_string))
		return ctl_reply_error(cl, "missing \"path\"");
	int stop = json_object_object_get_ex(args, "stop", &v) && json_object_get_boolean(v);
	ct->job_client = cl;
	int r = mig_snapshot(ct, json_object_get_string(p), stop, &res, &err);
	ct->job_client = NULL;
	if (r < 0)
		return ctl_reply_error(cl, err.msg);
	return ctl_reply(cl, ctl_make_return(res));
}

static void query_migration(struct container *ct, struct shim_client *cl)
{
	cleanup_free char *path = ct_path(ct->root, ct->cfg.name, "migration.json");
	cleanup_free char *txt = NULL;
	json_object *d = NULL;
	if (path && gw_read_file(path, 1 << 20, &txt, NULL, NULL) == 0)
		d = json_tokener_parse(txt);
	if (!d) {
		d = json_object_new_object();
		json_object_object_add(d, "status", json_object_new_string("none"));
	}
	ctl_reply(cl, ctl_make_return(d));
}

static void migrate_cancel(struct container *ct, struct shim_client *cl)
{
	if (ct->asks.switched)
		return ctl_reply_error(cl, "the move has switched to post-copy: the guest runs on "
				       "the destination now, and a cancel would lose it; the move "
				       "ends when every page has crossed");
	ct->asks.cancel = 1;
	ctl_reply(cl, ctl_make_return(NULL));
}

static void migrate_postcopy_now(struct container *ct, struct shim_client *cl)
{
	if (!ct->asks.capable)
		return ctl_reply_error(cl, "this migration was started with --no-postcopy (or "
				       "--offline): post-copy needs its disk mirror and QEMU "
				       "capability from the start; cancel and migrate again "
				       "without it");
	json_object *res = json_object_new_object();
	json_object_object_add(res, "already", json_object_new_boolean(ct->asks.switched));
	if (!ct->asks.switched)
		ct->asks.postcopy_now = 1;
	ctl_reply(cl, ctl_make_return(res));
}

static void migrate_recover(struct container *ct, struct shim_client *cl, json_object *args)
{
	json_object *v;
	const char *uri = args && json_object_object_get_ex(args, "uri", &v) &&
			  json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	if (strncmp(uri, "tcp:", 4) || strlen(uri) >= sizeof(ct->asks.recover_uri))
		return ctl_reply_error(cl, "\"uri\" must be tcp:HOST:PORT");
	if (!ct->asks.paused)
		return ctl_reply_error(cl, "no post-copy move of this container is paused: nothing "
				       "to recover (see `godwit migrate --status`)");
	if (ct->asks.recover_client || ct->asks.recover_uri[0])
		return ctl_reply_error(cl, "a recovery of this move is already under way");
	snprintf(ct->asks.recover_uri, sizeof(ct->asks.recover_uri), "%s", uri);
	ct->asks.recover_client = cl; /* mig_recover.c answers */
}

void ctl_asks_end(struct container *ct, const char *why)
{
	if (ct->asks.recover_client) {
		char desc[GW_ERR_MSG_MAX + 32];
		snprintf(desc, sizeof(desc), "the move ended: %s", why);
		ctl_reply_error(ct->asks.recover_client, desc);
	}
	ct->asks = (struct mig_asks){ 0 };
}

int ctl_migration_command(struct container *ct, struct shim_client *cl, const char *cmd,
			  json_object *args)
{
	if (!strcmp(cmd, "query-migration")) {
		query_migration(ct, cl);
		return 1;
	}
	if (!strcmp(cmd, "migrate-cancel") || !strcmp(cmd, "migrate-postcopy-now") ||
	    !strcmp(cmd, "migrate-recover")) {
		if (!ct->asks.source)
			ctl_reply_error(cl, "no migration of this container is running here");
		else if (!strcmp(cmd, "migrate-cancel"))
			migrate_cancel(ct, cl);
		else if (!strcmp(cmd, "migrate-postcopy-now"))
			migrate_postcopy_now(ct, cl);
		else
			migrate_recover(ct, cl, args);
		return 1;
	}
	/* a new job only when none runs (ctl_handle answers that it must wait) */
	if (ct->job != SHIM_NO_JOB)
		return 0;
	if (!strcmp(cmd, "migrate")) {
		do_migrate(ct, cl, args);
		return 1;
	}
	if (!strcmp(cmd, "snapshot")) {
		do_snapshot(ct, cl, args);
		return 1;
	}
	return 0;
}
