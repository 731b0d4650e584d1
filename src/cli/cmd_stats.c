/* godwit stats: containers' resource use, docker stats' columns, each from where it is true
 * for a VM: CPU %, memory, network, block I/O and processes from the guest's own counters (its
 * agent reads the guest's /proc: guest-query "stats", docs/api.md), and the host's cost of the
 * VM beside them (its QEMU's CPU time and resident memory, from the host's /proc). CPU figures
 * are over one second between two samples. Streams every second until Ctrl-C, or once with
 * --no-stream. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/util.h"

#define MAX_SHOWN 64

struct sample {
	int ok;
	json_object *g;		/* the guest's counters */
	int64_t qemu_ticks;	/* its QEMU's utime + stime */
	int64_t qemu_rss_kb;
	int64_t at_ns;
};

static void qemu_usage(pid_t pid, struct sample *s)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	cleanup_fclose FILE *f = pid > 0 ? fopen(path, "re") : NULL;
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	long rss = 0;
	if (rp && sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
			 "%*d %*d %*d %*d %*u %*u %ld", &ut, &st, &rss) == 3) {
		s->qemu_ticks = (int64_t)(ut + st);
		s->qemu_rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
	}
}

static void take(const struct gw_cli *cli, const char *name, struct sample *s)
{
	struct gw_err err = { 0 };
	struct ct_status st;
	json_object *ans = NULL, *g;
	json_object_put(s->g);
	memset(s, 0, sizeof(*s));
	if (ct_status_load(cli->root, name, &st, &err) < 0 || st.state != CT_RUNNING ||
	    cli_guest_query(cli, name, "stats", &ans, &err) < 0)
		return;
	if (json_object_object_get_ex(ans, "stats", &g))
		s->g = json_object_get(g);
	json_object_put(ans);
	qemu_usage(st.qemu_pid, s);
	s->at_ns = gw_now_mono_ns();
	s->ok = s->g != NULL;
}

static void human(char *buf, size_t len, double v, int binary)
{
	const char *u2[] = { "B", "KiB", "MiB", "GiB", "TiB" }, *u10[] = { "B", "kB", "MB", "GB", "TB" };
	double k = binary ? 1024 : 1000;
	int i = 0;
	while (v >= k && i < 4)
		v /= k, i++;
	snprintf(buf, len, i ? "%.3g%s" : "%.0f%s", v, binary ? u2[i] : u10[i]);
}

static void row(const char *name, const struct sample *a, const struct sample *b)
{
	char mem[24], lim[24], rx[24], tx[24], rd[24], wr[24], rss[24], line[64];
	if (!a->ok || !b->ok) {
		printf("%-20s %s\n", name, "--  (not running)");
		return;
	}
	double all = (double)(cli_json_int(b->g, "cpu_all_ticks") -
			      cli_json_int(a->g, "cpu_all_ticks"));
	double busy = (double)(cli_json_int(b->g, "cpu_busy_ticks") -
			       cli_json_int(a->g, "cpu_busy_ticks"));
	double cpu = all > 0 ? busy / all * 100.0 * (double)cli_json_int(b->g, "ncpu") : 0;
	double dt = (double)(b->at_ns - a->at_ns) / 1e9;
	long hz = sysconf(_SC_CLK_TCK);
	double hcpu = dt > 0 ? (double)(b->qemu_ticks - a->qemu_ticks) / (double)hz / dt * 100 : 0;
	int64_t total = cli_json_int(b->g, "mem_total_kb");
	int64_t used = total - cli_json_int(b->g, "mem_available_kb");
	human(mem, sizeof(mem), (double)used * 1024, 1);
	human(lim, sizeof(lim), (double)total * 1024, 1);
	human(rx, sizeof(rx), (double)cli_json_int(b->g, "net_rx_bytes"), 0);
	human(tx, sizeof(tx), (double)cli_json_int(b->g, "net_tx_bytes"), 0);
	human(rd, sizeof(rd), (double)cli_json_int(b->g, "blk_read_bytes"), 0);
	human(wr, sizeof(wr), (double)cli_json_int(b->g, "blk_write_bytes"), 0);
	human(rss, sizeof(rss), (double)b->qemu_rss_kb * 1024, 1);
	snprintf(line, sizeof(line), "%s / %s", mem, lim);
	char net[52], blk[52];
	snprintf(net, sizeof(net), "%s / %s", rx, tx);
	snprintf(blk, sizeof(blk), "%s / %s", rd, wr);
	printf("%-20s %7.2f%% %-22s %6.2f%% %-20s %-20s %-5lld %9.2f%% %s\n", name, cpu, line,
	       total > 0 ? (double)used * 100.0 / (double)total : 0, net, blk,
	       (long long)cli_json_int(b->g, "pids"), hcpu, rss);
}

int cmd_stats(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-stream", no_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int c, once = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': once = 1; break;
		case 'h':
			printf("Usage: godwit stats [--no-stream] [CONTAINER...]\n\n"
			       "Show containers' CPU, memory, network, block I/O and processes as their\n"
			       "guests count them, and what their QEMU costs the host; every second\n"
			       "(default: all running containers).\n\n"
			       "      --no-stream  print once and exit\n"
			       "  -h, --help       this help\n");
			return 0;
		default: return cli_usage_error("stats", "invalid option");
		}
	}
	char *shown[MAX_SHOWN];
	size_t n = 0;
	char **all = NULL;
	struct gw_err err = { 0 };
	if (optind < argc) {
		for (int i = optind; i < argc && n < MAX_SHOWN; i++) {
			struct ct_status st;
			if (ct_status_load(cli->root, argv[i], &st, &err) < 0)
				return cli_fail("stats", &err);
			shown[n++] = argv[i];
		}
	} else {
		if (ct_list(cli->root, &all, &err) < 0)
			return cli_fail("stats", &err);
		for (size_t i = 0; all[i] && n < MAX_SHOWN; i++) {
			struct ct_status st;
			if (ct_status_load(cli->root, all[i], &st, &err) == 0 &&
			    st.state == CT_RUNNING)
				shown[n++] = all[i];
		}
	}
	struct sample a[MAX_SHOWN] = { 0 }, b[MAX_SHOWN] = { 0 };
	for (size_t i = 0; i < n; i++)
		take(cli, shown[i], &a[i]);
	for (;;) {
		sleep(1);
		for (size_t i = 0; i < n; i++)
			take(cli, shown[i], &b[i]);
		if (!once && isatty(1))
			printf("\033[2J\033[H");
		printf("%-20s %8s %-22s %7s %-20s %-20s %-5s %10s %s\n", "NAME", "CPU %",
		       "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS", "HOST CPU %",
		       "QEMU RSS");
		for (size_t i = 0; i < n; i++) {
			row(shown[i], &a[i], &b[i]);
			struct sample t = a[i];
			a[i] = b[i];
			b[i] = t;
		}
		fflush(stdout);
		if (once)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		json_object_put(a[i].g);
		json_object_put(b[i].g);
	}
	for (size_t i = 0; all && all[i]; i++)
		free(all[i]);
	free(all);
	return 0;
}
