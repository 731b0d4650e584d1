/* godwit logs: print a container's output from its log (-t: with the host's arrival time of
 * each line; -f: keep following until the container stops). */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

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
	ct_config_free(&cfg);
	cleanup_free char *path = ct_path(cli->root, name, "output.log");
	FILE *f = fopen(path, "re");
	if (!f)
		return 0; /* no output yet */
	char *line = NULL;
	size_t cap = 0, pend = 0;
	int at_start[3] = { 1, 1, 1 };
	char *acc = NULL; /* a record still being written (no newline yet) */
	for (;;) {
		ssize_t n = getline(&line, &cap, f);
		if (n > 0 && line[n - 1] == '\n') {
			char *rec_line = line;
			size_t rl = (size_t)n - 1;
			if (pend) { /* complete the record read in pieces */
				char *nb = realloc(acc, pend + (size_t)n);
				if (!nb)
					break;
				acc = nb;
				memcpy(acc + pend, line, (size_t)n);
				rec_line = acc;
				rl = pend + (size_t)n - 1;
				pend = 0;
			}
			struct log_record rec;
			if (log_parse(rec_line, rl, &rec) == 0)
				print_record(&rec, ts, &at_start[rec.stream]);
			continue;
		}
		if (n > 0) { /* the writer is mid-record: keep the piece */
			char *nb = realloc(acc, pend + (size_t)n);
			if (!nb)
				break;
			acc = nb;
			memcpy(acc + pend, line, (size_t)n);
			pend += (size_t)n;
		}
		if (!follow)
			break;
		struct ct_status st;
		if (ct_status_load(cli->root, name, &st, &err) < 0 || !is_live(st.state)) {
			/* one last read: the shim may have written before it stopped */
			clearerr(f);
			if ((n = getline(&line, &cap, f)) > 0) {
				fseek(f, -n, SEEK_CUR);
				continue;
			}
			break;
		}
		clearerr(f);
		poll(NULL, 0, 100);
	}
	free(acc);
	free(line);
	fclose(f);
	return 0;
}
