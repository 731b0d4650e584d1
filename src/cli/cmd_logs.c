/* godwit logs: print a container's output from its log (-t: with the host's arrival time of
 * each line; -f: keep following until the container stops). */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "godwit/container.h"
#include "godwit/logfile.h"
#include "godwit/util.h"

static void print_record(const struct log_record *rec, int timestamps, int *at_line_start)
{
	FILE *out = rec->stream == LOG_STDERR ? stderr : stdout;
	if (timestamps && *at_line_start)
		fprintf(out, "%s ", rec->time);
	fwrite(rec->text, 1, rec->len, out);
	if (!rec->partial)
		fputc('\n', out);
	*at_line_start = !rec->partial;
	fflush(out);
}

/* The log's records as they are read: a record the writer has not finished (no newline yet)
 * waits in acc for the rest. */
struct reader {
	int ts;
	int at_start[3];
	char *line, *acc;
	size_t cap, pend;
};

static void reader_free(struct reader *rd)
{
	free(rd->line);
	free(rd->acc);
}

/* Print f's records up to its end (clearing EOF, so that more can be read later): 0, or -1
 * out of memory. */
static int drain(struct reader *rd, FILE *f)
{
	ssize_t n;
	while ((n = getline(&rd->line, &rd->cap, f)) > 0) {
		char *rec_line = rd->line;
		size_t rl = (size_t)n;
		if (rd->pend || rd->line[n - 1] != '\n') { /* a record read in pieces */
			char *nb = realloc(rd->acc, rd->pend + (size_t)n);
			if (!nb)
				return -1;
			rd->acc = nb;
			memcpy(rd->acc + rd->pend, rd->line, (size_t)n);
			rd->pend += (size_t)n;
			if (rd->line[n - 1] != '\n')
				continue; /* the writer is mid-record: keep the piece */
			rec_line = rd->acc;
			rl = rd->pend;
			rd->pend = 0;
		}
		struct log_record rec;
		if (log_parse(rec_line, rl - 1, &rec) == 0)
			print_record(&rec, rd->ts, &rd->at_start[rec.stream]);
	}
	clearerr(f);
	return 0;
}

/* The rotated files path.from ... path.1, oldest first; a record cut off at a file's end is
 * not continued in the next. */
static void drain_rotated(struct reader *rd, const char *path, int from)
{
	for (int k = from; k >= 1; k--) {
		cleanup_free char *old = gw_strdup_printf("%s.%d", path, k);
		FILE *of = old ? fopen(old, "re") : NULL;
		if (!of)
			continue;
		drain(rd, of);
		fclose(of);
		rd->pend = 0;
	}
}

static int is_live(enum ct_state s)
{
	return s == CT_RUNNING || s == CT_PAUSED || s == CT_MIGRATING || s == CT_INCOMING ||
	       s == CT_CREATED;
}

int cmd_logs(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' }, { "timestamps", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int follow = 0, ts = 0, c;
	while ((c = getopt_long(argc, argv, "fth", opts, NULL)) != -1) {
		switch (c) {
		case 'f': follow = 1; break;
		case 't': ts = 1; break;
		case 'h':
			printf("Usage: godwit logs [-f] [-t] CONTAINER\n\nShow a container's output.\n\n"
			       "  -f, --follow      keep printing new output until the container stops\n"
			       "  -t, --timestamps  prefix each line with the host's RFC 3339 time of "
			       "arrival\n"
			       "  -h, --help        this help\n");
			return 0;
		default: return cli_usage_error("logs", "invalid option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("logs", "want exactly one CONTAINER");
	const char *name = argv[optind];
	struct gw_err err = { 0 };
	struct ct_config cfg;
	if (ct_config_load(cli->root, name, &cfg, &err) < 0)
		return cli_fail("logs", &err);
	int files = cfg.log_max_file ? cfg.log_max_file : CT_LOG_MAX_FILE_DEFAULT;
	ct_config_free(&cfg);
	cleanup_free char *path = ct_path(cli->root, name, "output.log");
	if (!path)
		return cli_fail("logs", &(struct gw_err){ .code = ENOMEM, .msg = "out of memory" });
	struct reader rd = { .ts = ts, .at_start = { 1, 1, 1 } };
	/* the rotated files first, oldest first (run --log-opt) */
	drain_rotated(&rd, path, files - 1);
	FILE *f = fopen(path, "re");
	if (!f) {
		reader_free(&rd);
		return 0; /* no output yet */
	}
	while (drain(&rd, f) == 0 && follow) {
		struct ct_status st;
		if (ct_status_load(cli->root, name, &st, &err) < 0 || !is_live(st.state)) {
			/* one last read: the shim may have written before it stopped */
			drain(&rd, f);
			break;
		}
		/* rotated: the rest of the old file, the files rotated after it (it may have moved
		 * more than once since the last look), then the new one from its start */
		struct stat now, open_st;
		if (stat(path, &now) == 0 && fstat(fileno(f), &open_st) == 0 &&
		    now.st_ino != open_st.st_ino) {
			drain(&rd, f);
			int at = 0;
			for (int k = 1; k < files && !at; k++) {
				cleanup_free char *old = gw_strdup_printf("%s.%d", path, k);
				struct stat ks;
				if (old && stat(old, &ks) == 0 && ks.st_ino == open_st.st_ino)
					at = k;
			}
			rd.pend = 0;
			drain_rotated(&rd, path, at - 1);
			FILE *nf = fopen(path, "re");
			if (nf) {
				fclose(f);
				f = nf;
				rd.pend = 0;
				continue;
			}
		}
		poll(NULL, 0, 100);
	}
	reader_free(&rd);
	fclose(f);
	return 0;
}
