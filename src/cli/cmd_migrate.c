/* godwit migrate: move a running container to a destination started with `godwit incoming`,
 * live (pre-copy, steered by the policy) or --offline; prints progress on a tty and the
 * figures at the end (--json: one JSON object). */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/util.h"

static int on_progress(json_object *ev, void *opaque)
{
	int tty = *(int *)opaque;
	json_object *d, *v;
	if (!tty || !json_object_object_get_ex(ev, "data", &d))
		return 0;
	uint64_t tr = 0, rem = 0, tot = 0, round = 0;
	double rate = 0, dirty = 0;
	int xb = 0;
	if (json_object_object_get_ex(d, "transferred", &v)) tr = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(d, "remaining", &v)) rem = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(d, "total", &v)) tot = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(d, "round", &v)) round = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(d, "rate", &v)) rate = json_object_get_double(v);
	if (json_object_object_get_ex(d, "dirty_rate", &v)) dirty = json_object_get_double(v);
	if (json_object_object_get_ex(d, "xbzrle", &v)) xb = json_object_get_boolean(v);
	int pct = tot ? (int)(100 * (tot - (rem < tot ? rem : tot)) / tot) : 0;
	if (json_object_object_get_ex(d, "phase", &v) && gw_json_streq(v, "postcopy")) {
		fprintf(stderr, "\rMigration: postcopy  %llu MiB sent  %llu MiB left   ",
			(unsigned long long)(tr >> 20), (unsigned long long)(rem >> 20));
		return 0;
	}
	fprintf(stderr, "\rMigration: [%3d %%]  round %llu  %llu MiB sent  %.1f MiB/s  dirty %.0f "
		"MiB/s  xbzrle %s   ", pct, (unsigned long long)round,
		(unsigned long long)(tr >> 20), rate / 1048576, dirty / 1048576, xb ? "on" : "off");
	return 0;
}

/* The figures of NAME's latest migration: from its shim (query-migration: with the phase of
 * a move that runs there, at either end), else from migration.json, which the shim leaves
 * behind (and writes at every step: a shim that does not answer within 0.8 s is read there);
 * NULL when there are none. */
static json_object *migration_figures(struct gw_cli *cli, const char *name, enum ct_state state)
{
	json_object *d = NULL, *v;
	int fd = -1;
	if (state == CT_MIGRATING || state == CT_INCOMING || state == CT_RUNNING) {
		/* an incoming container's shim answers this too (cli_connect turns it away) */
		cleanup_free char *sock = ct_path(cli->root, name, "shim.sock");
		fd = sock ? ctl_connect(sock, NULL) : -1;
	}
	if (fd >= 0) {
		struct ctl_reader rd = { 0 };
		if (ctl_call(fd, &rd, "query-migration", NULL, &d, NULL, NULL, 800, NULL) < 0)
			d = NULL;
		ctl_reader_free(&rd);
		close(fd);
	}
	if (!d) {
		cleanup_free char *path = ct_path(cli->root, name, "migration.json");
		cleanup_free char *txt = NULL;
		if (path && gw_read_file(path, 1 << 20, &txt, NULL, NULL) == 0 &&
		    !(d = json_tokener_parse(txt)))
			d = json_object_new_string("malformed");
	}
	if (d && json_object_object_get_ex(d, "status", &v) && gw_json_streq(v, "none")) {
		json_object_put(d);
		d = NULL;
	}
	return d;
}

static int migrate_status(struct gw_cli *cli, const char *name, int json)
{
	struct gw_err err = { 0 };
	struct ct_status st;
	if (ct_status_load(cli->root, name, &st, &err) < 0)
		return cli_fail("migrate", &err);
	json_object *d = migration_figures(cli, name, st.state), *v;
	if (!d) {
		if (json)
			printf("{\"status\":\"none\",\"state\":\"%s\"}\n", ct_state_name(st.state));
		else
			printf("%s: %s, no migration yet\n", name, ct_state_name(st.state));
		return 0;
	}
	if (!json_object_is_type(d, json_type_object)) {
		json_object_put(d);
		return cli_fail("migrate", &(struct gw_err){ EINVAL, "malformed migration.json" });
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
		json_object_put(d);
		return 0;
	}
	const char *s = json_object_object_get_ex(d, "status", &v) ? json_object_get_string(v) : "?";
	printf("%s: %s; migration %s", name, ct_state_name(st.state), s);
	if (json_object_object_get_ex(d, "round", &v))
		printf(", round %lld", (long long)json_object_get_int64(v));
	if (json_object_object_get_ex(d, "transferred", &v))
		printf(", %lld MiB sent", (long long)(json_object_get_int64(v) >> 20));
	if (json_object_object_get_ex(d, "remaining", &v))
		printf(", %lld MiB left", (long long)(json_object_get_int64(v) >> 20));
	if (json_object_object_get_ex(d, "postcopy_requests", &v))
		printf(", %lld pages requested on demand", (long long)json_object_get_int64(v));
	/* where the shim's job is, while one runs (query-migration) */
	if (json_object_object_get_ex(d, "job_phase", &v))
		printf("; phase %.32s", json_object_get_string(v));
	if (json_object_object_get_ex(d, "error", &v)) {
		/* a peer's words may be in it: escaped */
		char e[4 * GW_ERR_MSG_MAX + 1];
		gw_escape_ctl(json_object_get_string(v), e, sizeof(e));
		printf(": %s", e);
	}
	printf("\n");
	json_object_put(d);
	return 0;
}

/* Ask the shim of NAME's running move something over the control API (docs/api.md:
 * migrate-cancel, migrate-postcopy-now, migrate-recover): 0 and *ret, or an error printed
 * (exit 125). The shim decides what the move may be asked; its refusal is the message. */
static int ask_move(struct gw_cli *cli, const char *name, const char *cmd, json_object *args,
		    int timeout_ms, json_object **ret)
{
	struct gw_err err = { 0 };
	struct ct_status st;
	if (ct_status_load(cli->root, name, &st, &err) < 0)
		return cli_fail("migrate", &err);
	if (st.state != CT_MIGRATING || st.shim_pid <= 0)
		return cli_fail("migrate", &(struct gw_err){ EINVAL, "no migration of this container "
							     "is running" });
	int fd = cli_connect(cli, name, &err);
	if (fd < 0)
		return cli_fail("migrate", &err);
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, cmd, args, ret, NULL, NULL, timeout_ms, &err);
	ctl_reader_free(&rd);
	close(fd);
	return r < 0 ? cli_fail("migrate", &err) : 0;
}

static int migrate_cancel(struct gw_cli *cli, const char *name)
{
	json_object *res = NULL;
	int r = ask_move(cli, name, "migrate-cancel", NULL, 5000, &res);
	json_object_put(res);
	if (r)
		return r;
	printf("%s: cancel requested\n", name);
	return 0;
}

/* --postcopy-now: a running pre-copy that was set up for post-copy switches at once. */
static int migrate_postcopy_now(struct gw_cli *cli, const char *name)
{
	json_object *res = NULL, *v;
	int r = ask_move(cli, name, "migrate-postcopy-now", NULL, 5000, &res);
	if (r)
		return r;
	int already = json_object_object_get_ex(res, "already", &v) && json_object_get_boolean(v);
	json_object_put(res);
	printf(already ? "%s: already in post-copy\n" : "%s: switch to post-copy requested\n",
	       name);
	return 0;
}

/* --recover: a post-copy move whose link broke resumes over a new connection to the
 * destination's listener (docs/migration.md, "Recovery"). The shim answers once the attempt
 * has ended: its connects (15 s), the destination's answer (30 s), QEMU's resume. */
static int migrate_recover(struct gw_cli *cli, const char *name, const char *uri)
{
	json_object *args = json_object_new_object(), *res = NULL, *v;
	json_object_object_add(args, "uri", json_object_new_string(uri));
	int r = ask_move(cli, name, "migrate-recover", args, 120000, &res);
	json_object_put(args);
	if (r)
		return r;
	printf("%s: post-copy resumed over %s (%s)\n", name, uri,
	       json_object_object_get_ex(res, "status", &v) ? json_object_get_string(v) : "?");
	json_object_put(res);
	return 0;
}

static void usage(void)
{
	printf("Usage: godwit migrate [OPTIONS] CONTAINER tcp:HOST:PORT\n"
	       "       godwit migrate --status [--json] CONTAINER\n"
	       "       godwit migrate --cancel CONTAINER\n"
	       "       godwit migrate --postcopy-now CONTAINER\n"
	       "       godwit migrate --recover CONTAINER tcp:HOST:PORT\n\n"
	       "Move a running container to a destination started with `godwit incoming`.\n"
	       "Every move first mirrors the container's disk over NBD, then moves its memory:\n"
	       "by default pre-copy, switching to post-copy only when it will not converge;\n"
	       "a mostly idle guest moves by pre-copy alone, skipping its free pages.\n\n"
	       "Options for a move:\n"
	       "      --offline           static migration: the guest stops for the memory copy\n"
	       "      --max-downtime DUR  target pause (default 50ms; e.g. 20ms; a bare number\n"
	       "                          is ms)\n"
	       "      --bandwidth SIZE    cap in bytes/s, before and after a post-copy switch\n"
	       "                          (default uncapped; e.g. 1G; a bare number is MiB/s)\n"
	       "      --timeout DUR       pre-copy time limit (default 60s, at least 1s): then\n"
	       "                          switch to post-copy, or with --no-postcopy give up\n"
	       "                          (the source runs on); it also bounds the disk mirror\n"
	       "      --postcopy          switch to post-copy after the first full pass (no\n"
	       "                          cancel after the switch)\n"
	       "      --no-postcopy       pre-copy only: the policy throttles the guest instead\n"
	       "                          of switching\n"
	       "      --allow-postcopy    the default, said explicitly\n"
	       "      --channels N        move memory on N parallel connections (QEMU's\n"
	       "                          multifd, 2 to 8; 1: one stream, the default); not\n"
	       "                          with --postcopy: the policy throttles instead\n"
	       "      --tls-dir DIR       the move inside mutual TLS, DIR in QEMU's x509\n"
	       "                          layout (default $GODWIT_TLS_DIR; docs/security.md)\n"
	       "      --json              print the final figures as one JSON object (with\n"
	       "                          --status: the raw migration.json)\n\n"
	       "Acting on a running move:\n"
	       "      --status            print the figures of its latest migration\n"
	       "      --cancel            cancel it (before the commit the source runs on)\n"
	       "      --postcopy-now      switch it to post-copy now (not a move started with\n"
	       "                          --no-postcopy or --offline, or one that skips free\n"
	       "                          pages)\n"
	       "      --recover           resume a paused post-copy move whose link broke, over\n"
	       "                          a new connection to the destination's `incoming`\n"
	       "                          address\n"
	       "  -h, --help              this help\n");
}

/* Ctrl-C on a running `godwit migrate` cancels it: the handler writes a migrate-cancel,
 * made beforehand, on a second connection to the shim (write is async-signal-safe); the
 * shim's answer to the move says how it ended. */
static int cancel_fd = -1;
static char cancel_line[64];

static void forward_int(int sig)
{
	(void)sig;
	if (cancel_fd >= 0 && write(cancel_fd, cancel_line, strlen(cancel_line)) < 0)
		cancel_fd = -1;
}

/* The move itself: `migrate` on the shim's control socket, its progress on a tty, its
 * figures at the end; Ctrl-C meanwhile cancels it (forward_int). */
static int run_move(struct gw_cli *cli, const char *name, json_object *args, int json)
{
	struct gw_err err = { 0 };
	int fd = cli_connect(cli, name, &err);
	if (fd < 0)
		return cli_fail("migrate", &err);
	struct ctl_reader rd = { 0 };
	json_object *res = NULL;
	struct ct_status st;
	pid_t shim_pid = ct_status_load(cli->root, name, &st, NULL) == 0 ? st.shim_pid : 0;
	snprintf(cancel_line, sizeof(cancel_line), "{\"execute\":\"migrate-cancel\"}\n");
	cancel_fd = cli_connect(cli, name, NULL);
	struct sigaction sa = { .sa_handler = forward_int };
	sigaction(SIGINT, &sa, NULL);
	int tty = isatty(2) && !json;
	int r = ctl_call(fd, &rd, "migrate", args, &res, on_progress, &tty, -1, &err);
	ctl_reader_free(&rd);
	close(fd);
	signal(SIGINT, SIG_DFL);
	if (cancel_fd >= 0)
		close(cancel_fd);
	if (tty)
		fprintf(stderr, "\n");
	if (r == -EPIPE)
		/* the shim ended the connection without an answer: it has died */
		gw_err_prefix(&err, "the shim of %s exited during the move (its record says what "
			      "is left: godwit ps -a)", name);
	if (r < 0)
		return cli_fail("migrate", &err);
	/* the source's shim goes once its QEMU has exited: when we return, both are gone */
	for (int i = 0; i < 1000 && shim_pid > 0 && ct_shim_alive(shim_pid); i++)
		poll(NULL, 0, 10);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
	} else {
		json_object *v;
		double total = json_object_object_get_ex(res, "total_ms", &v) ? json_object_get_int64(v) / 1000.0 : 0;
		int64_t down = json_object_object_get_ex(res, "downtime_ms", &v) ? json_object_get_int64(v) : 0;
		double bytes = json_object_object_get_ex(res, "bytes", &v) ? (double)json_object_get_int64(v) : 0;
		int64_t rounds = json_object_object_get_ex(res, "rounds", &v) ? json_object_get_int64(v) : 0;
		printf("migrated %s in %.2f s: paused %lld ms (QEMU), %.1f MiB sent, %lld rounds\n",
		       name, total, (long long)down, bytes / 1048576, (long long)rounds);
	}
	json_object_put(res);
	return 0;
}

int cmd_migrate(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "offline", no_argument, NULL, 'o' },
		{ "max-downtime", required_argument, NULL, 'D' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "status", no_argument, NULL, 's' },
		{ "cancel", no_argument, NULL, 'c' },
		{ "postcopy", no_argument, NULL, 'P' },
		{ "allow-postcopy", no_argument, NULL, 'A' },
		{ "no-postcopy", no_argument, NULL, 'n' },
		{ "postcopy-now", no_argument, NULL, 'N' },
		{ "recover", no_argument, NULL, 'R' },
		{ "tls-dir", required_argument, NULL, 't' },
		{ "channels", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *tls_flag = NULL;
	int offline = 0, json = 0, status = 0, cancel = 0, postcopy = 0, no_pc = 0, now = 0;
	int recover = 0, channels = 0, c;
	int64_t downtime_ns = 0, timeout_ns = 0;
	uint64_t bw = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': offline = 1; break;
		case 'D':
			if (gw_parse_duration(optarg, &downtime_ns) < 0 || downtime_ns < 1000000)
				return cli_usage_error("migrate", "invalid --max-downtime '%s'", optarg);
			break;
		case 'T':
			if (gw_parse_duration(optarg, &timeout_ns) < 0 || timeout_ns < 1000000000LL)
				return cli_usage_error("migrate", "invalid --timeout '%s'", optarg);
			break;
		case 'b':
			if (gw_parse_size(optarg, 1ULL << 20, &bw) < 0 || bw < (1ULL << 20))
				return cli_usage_error("migrate", "invalid --bandwidth '%s' (bytes/s, "
						       "e.g. 500M, 1G)", optarg);
			break;
		case 'j': json = 1; break;
		case 's': status = 1; break;
		case 'c': cancel = 1; break;
		case 'P': postcopy = 1; break;
		case 'A': break; /* the default; kept for scripts that say it */
		case 'n': no_pc = 1; break;
		case 'N': now = 1; break;
		case 'R': recover = 1; break;
		case 't': tls_flag = optarg; break;
		case 'C': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > 8)
				return cli_usage_error("migrate", "invalid --channels '%s' (1 to 8)",
						       optarg);
			channels = (int)n;
			break;
		}
		case 'h':
			usage();
			return 0;
		default: return cli_usage_error("migrate", "invalid option");
		}
	}
	if (status || cancel || now) {
		if (argc - optind != 1 || status + cancel + now > 1)
			return cli_usage_error("migrate", "--status, --cancel and --postcopy-now take "
					       "one CONTAINER, and only one of them");
		return status ? migrate_status(cli, argv[optind], json)
		       : cancel ? migrate_cancel(cli, argv[optind])
				: migrate_postcopy_now(cli, argv[optind]);
	}
	if (argc - optind != 2)
		return cli_usage_error("migrate", "want CONTAINER and tcp:HOST:PORT");
	if (recover) {
		if (strncmp(argv[optind + 1], "tcp:", 4))
			return cli_usage_error("migrate", "destination '%s' must be tcp:HOST:PORT",
					       argv[optind + 1]);
		return migrate_recover(cli, argv[optind], argv[optind + 1]);
	}
	if (postcopy && (offline || no_pc))
		return cli_usage_error("migrate", "--postcopy excludes --offline and --no-postcopy");
	if (channels > 1 && (postcopy || offline))
		return cli_usage_error("migrate", "--channels above 1 excludes --postcopy and "
				       "--offline");
	const char *name = argv[optind], *uri = argv[optind + 1];
	if (strncmp(uri, "tcp:", 4))
		return cli_usage_error("migrate", "destination '%s' must be tcp:HOST:PORT", uri);
	struct gw_err err = { 0 };
	cleanup_free char *tls_dir = NULL;
	if (cli_tls_dir(tls_flag, 0, &tls_dir, &err) < 0)
		return cli_fail("migrate", &err);
	json_object *args = json_object_new_object();
	if (tls_dir)
		json_object_object_add(args, "tls_dir", json_object_new_string(tls_dir));
	json_object_object_add(args, "uri", json_object_new_string(uri));
	json_object_object_add(args, "offline", json_object_new_boolean(offline));
	if (postcopy)
		json_object_object_add(args, "postcopy", json_object_new_boolean(1));
	if (no_pc)
		json_object_object_add(args, "no_postcopy", json_object_new_boolean(1));
	if (downtime_ns)
		json_object_object_add(args, "max_downtime_ms", json_object_new_int64(downtime_ns / 1000000));
	if (timeout_ns)
		json_object_object_add(args, "max_total_s", json_object_new_int64(timeout_ns / 1000000000LL));
	if (bw)
		json_object_object_add(args, "bandwidth", json_object_new_int64((int64_t)bw));
	if (channels)
		json_object_object_add(args, "channels", json_object_new_int(channels));
	int r = run_move(cli, name, args, json);
	json_object_put(args);
	return r;
}
