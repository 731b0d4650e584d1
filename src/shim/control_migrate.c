/* The control API's migration commands (docs/api.md): `migrate` and `snapshot` start a job
 * of the shim's event loop (job.h); while a move runs here as its source, these ask things of
 * it, answered by the loop at once:
 *   query-migration       the figures it last published (migration.json), and its phase
 *   migrate-cancel        before the commit: the source runs on
 *   migrate-postcopy-now  switch to post-copy at the engine's next turn
 *   migrate-recover       a post-copy move paused by a broken link resumes over a new
 *                         connection; answered when that attempt ends
 * The engine (mig_source*.c, mig_recover.c) fills ct->asks with what it may be asked and
 * acts on what was asked. */
#include <stdlib.h>
#include <string.h>

#include "godwit/util.h"
#include "shim.h"
#include "migrate.h"

/* A migrate or snapshot request runs as the shim's job (job.h); the client that asked is
 * answered when it ends, and is not read meanwhile. */
struct ctl_job {
	struct container *ct;
	struct shim_client *cl;
	json_object *args;	/* migrate's arguments (held) */
	const char *path;	/* snapshot: in args */
	const char *key_file;	/* snapshot: its HMAC's key file, or NULL */
	int snapshot, stop;
	json_object *res;
};

static int ctl_job_run(void *arg, struct gw_err *err)
{
	struct ctl_job *j = arg;
	if (j->snapshot)
		return mig_snapshot(j->ct, j->path, j->stop, j->key_file, &j->res, err);
	return mig_source_run(j->ct, j->cl, j->args, &j->res, err);
}

static void ctl_job_done(void *arg, int r, struct gw_err *err)
{
	struct ctl_job *j = arg;
	j->ct->job_client = NULL;
	if (!j->snapshot)
		ctl_asks_end(j->ct, r < 0 ? err->msg : "the move completed");
	if (r < 0)
		ctl_reply_error(j->cl, err->msg);
	else
		ctl_reply(j->cl, ctl_make_return(j->res));
	json_object_put(j->args);
	free(j);
}

static void start_job(struct container *ct, struct shim_client *cl, json_object *args,
		      int snapshot)
{
	json_object *v, *p = NULL;
	if (snapshot && (!args || !json_object_object_get_ex(args, "path", &p) ||
			 !json_object_is_type(p, json_type_string)))
		return ctl_reply_error(cl, "missing \"path\"");
	struct ctl_job *j = calloc(1, sizeof(*j));
	struct gw_err err = { 0 };
	if (!j)
		return ctl_reply_error(cl, "out of memory");
	*j = (struct ctl_job){ .ct = ct, .cl = cl, .args = json_object_get(args),
			       .snapshot = snapshot };
	if (snapshot) {
		j->path = json_object_get_string(p);
		j->stop = json_object_object_get_ex(args, "stop", &v) && json_object_get_boolean(v);
		if (json_object_object_get_ex(args, "key_file", &v)) {
			if (!json_object_is_type(v, json_type_string) ||
			    json_object_get_string(v)[0] != '/') {
				free(j);
				return ctl_reply_error(cl, "\"key_file\" must be an absolute path");
			}
			j->key_file = json_object_get_string(v);
		}
	}
	ct->job_client = cl;
	if (job_start(&ct->job, ctl_job_run, ctl_job_done, j, &err) < 0) {
		ct->job_client = NULL;
		json_object_put(j->args);
		free(j);
		ctl_reply_error(cl, err.msg);
	}
}

static void query_migration(struct container *ct, struct shim_client *cl)
{
	cleanup_free char *path = ct_path(ct->root, ct->cfg.name, "migration.json");
	cleanup_free char *txt = NULL;
	json_object *d = NULL;
	if (path && gw_read_file(path, 1 << 20, &txt, NULL, NULL) == 0)
		d = json_tokener_parse(txt);
	if (!d) {
		/* none yet here: a destination's move publishes nothing until it ends */
		d = json_object_new_object();
		json_object_object_add(d, "status", json_object_new_string(ct->job ? "running"
										    : "none"));
	}
	/* the job's phase, while one runs here (either end of a move, or a snapshot) */
	if (ct->job && json_object_is_type(d, json_type_object))
		json_object_object_add(d, "job_phase",
				       json_object_new_string(job_phase_name(job_phase(ct->job))));
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
				       "--offline, or it skips the guest's free pages): post-copy "
				       "needs its disk mirror and QEMU capability from the start; "
				       "cancel and migrate again with --postcopy");
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
	if (ct->job || ct->access != SHIM_OPEN)
		return 0;
	if (!strcmp(cmd, "migrate") || !strcmp(cmd, "snapshot")) {
		start_job(ct, cl, args, !strcmp(cmd, "snapshot"));
		return 1;
	}
	return 0;
}
