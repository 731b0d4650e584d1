/* QUERY frames (docs/agent-protocol.md): what the host asks about the guest, answered from
 * the guest's /proc in one ANSWER frame. "ps": the container's processes (every userland
 * process but the agent; at most QUERY_PS_MAX, each command line cut at QUERY_CMD_MAX), for
 * `godwit top`; "stats": CPU ticks, memory, network and block counters, for `godwit stats`. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"

#define QUERY_PS_MAX 512
#define QUERY_CMD_MAX 200

/* a small /proc file into buf (NUL-terminated); its length, or -1 */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

static json_object *one_proc(const char *pid_s, long hz, long page_kb)
{
	char path[64], stat[1024], cmd[QUERY_CMD_MAX + 1], status[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid_s);
	n = read_small(path, cmd, sizeof(cmd));
	if (n <= 0)
		return NULL; /* a kernel thread, or gone */
	for (ssize_t i = 0; i < n - 1; i++)
		if (!cmd[i] || !isprint((unsigned char)cmd[i]))
			cmd[i] = ' ';
	snprintf(path, sizeof(path), "/proc/%s/stat", pid_s);
	if (read_small(path, stat, sizeof(stat)) <= 0)
		return NULL;
	/* after the command name in parentheses (which may hold anything): state ppid ... */
	char *rp = strrchr(stat, ')'), st = '?';
	long ppid = 0, rss = 0;
	unsigned long long ut = 0, stime = 0, start = 0;

	if (!rp || sscanf(rp + 1, " %c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
			  "%*d %*d %*d %*d %llu %*u %ld", &st, &ppid, &ut, &stime, &start, &rss) < 6)
		return NULL;
	long uid = -1;
	snprintf(path, sizeof(path), "/proc/%s/status", pid_s);
	if (read_small(path, status, sizeof(status)) > 0) {
		char *u = strstr(status, "\nUid:");
		if (u)
			uid = strtol(u + 5, NULL, 10);
	}
	json_object *o = json_object_new_object();

	json_object_object_add(o, "pid", json_object_new_int(atoi(pid_s)));
	json_object_object_add(o, "ppid", json_object_new_int64(ppid));
	json_object_object_add(o, "uid", json_object_new_int64(uid));
	json_object_object_add(o, "state", json_object_new_string_len(&st, 1));
	json_object_object_add(o, "rss_kb", json_object_new_int64(rss * page_kb));
	json_object_object_add(o, "cpu_ms", json_object_new_int64(
		(int64_t)((ut + stime) * 1000 / (unsigned long long)hz)));
	json_object_object_add(o, "start_ms", json_object_new_int64(
		(int64_t)(start * 1000 / (unsigned long long)hz)));
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

/* the container's processes, or their count (list NULL) */
static int walk_procs(json_object *list)
{
	long hz = sysconf(_SC_CLK_TCK), page_kb = sysconf(_SC_PAGESIZE) / 1024;
	DIR *d = opendir("/proc");
	struct dirent *e;
	int count = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && count < QUERY_PS_MAX) {
		if (!isdigit((unsigned char)e->d_name[0]) || !strcmp(e->d_name, "1"))
			continue;
		if (!list) { /* a count: a userland process has a command line */
			char path[300], c[2];

			snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
			count += read_small(path, c, sizeof(c)) > 0;
			continue;
		}
		json_object *p = one_proc(e->d_name, hz > 0 ? hz : 100, page_kb > 0 ? page_kb : 4);

		if (!p)
			continue;
		count++;
		json_object_array_add(list, p);
	}
	closedir(d);
	return count;
}

static int64_t meminfo(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static json_object *stats(void)
{
	static char buf[16384];
	json_object *o = json_object_new_object();
	unsigned long long v[8] = { 0 };

	if (read_small("/proc/stat", buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		unsigned long long idle = v[3] + v[4], all = 0;

		for (int i = 0; i < 8; i++)
			all += v[i];
		json_object_object_add(o, "cpu_busy_ticks", json_object_new_uint64(all - idle));
		json_object_object_add(o, "cpu_all_ticks", json_object_new_uint64(all));
	}
	json_object_object_add(o, "ncpu", json_object_new_int64(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(o, "hz", json_object_new_int64(sysconf(_SC_CLK_TCK)));
	if (read_small("/proc/meminfo", buf, sizeof(buf)) > 0) {
		json_object_object_add(o, "mem_total_kb",
				       json_object_new_int64(meminfo(buf, "MemTotal:")));
		json_object_object_add(o, "mem_available_kb",
				       json_object_new_int64(meminfo(buf, "MemAvailable:")));
	}
	unsigned long long rx = 0, tx = 0, rd = 0, wr = 0;

	if (read_small("/proc/net/dev", buf, sizeof(buf)) > 0) {
		for (char *l = strchr(buf, '\n'); l && (l = strchr(l + 1, '\n'));) {
			char name[32];
			unsigned long long r, t;

			if (sscanf(l + 1, " %31[^:]: %llu %*u %*u %*u %*u %*u %*u %*u %llu", name,
				   &r, &t) == 3 && strcmp(name, "lo")) {
				rx += r;
				tx += t;
			}
		}
	}
	if (read_small("/proc/diskstats", buf, sizeof(buf)) > 0) {
		for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
			char name[32];
			unsigned long long r, w;

			/* whole virtio disks (vda, vdb): not their partitions */
			if (sscanf(l, " %*u %*u %31s %*u %*u %llu %*u %*u %*u %llu", name, &r,
				   &w) == 3 && !strncmp(name, "vd", 2) && !isdigit((unsigned char)
				   name[strlen(name) - 1])) {
				rd += r * 512;
				wr += w * 512;
			}
		}
	}
	json_object_object_add(o, "net_rx_bytes", json_object_new_uint64(rx));
	json_object_object_add(o, "net_tx_bytes", json_object_new_uint64(tx));
	json_object_object_add(o, "blk_read_bytes", json_object_new_uint64(rd));
	json_object_object_add(o, "blk_write_bytes", json_object_new_uint64(wr));
	json_object_object_add(o, "pids", json_object_new_int(walk_procs(NULL)));
	return o;
}

void query_handle(struct agent *a, const struct gw_frame *f)
{
	struct json_object *q = NULL, *v, *ans = json_object_new_object();
	struct gw_err err = { 0 };
	const char *what = "";

	if (gw_frame_json(f, &q, NULL) == 0 && json_object_object_get_ex(q, "id", &v) &&
	    json_object_is_type(v, json_type_int))
		json_object_object_add(ans, "id", json_object_get(v));
	if (q && json_object_object_get_ex(q, "what", &v) && json_object_is_type(v, json_type_string))
		what = json_object_get_string(v);
	if (!strcmp(what, "ps")) {
		json_object *list = json_object_new_array();

		walk_procs(list);
		json_object_object_add(ans, "ps", list);
	} else if (!strcmp(what, "stats")) {
		json_object_object_add(ans, "stats", stats());
	} else {
		json_object_object_add(ans, "error", json_object_new_string("unknown query"));
	}
	if (gw_link_send_json(&a->link, GW_FRAME_ANSWER, f->hdr.chan, ans, &err) < 0)
		agent_log("ANSWER: %s", err.msg);
	json_object_put(ans);
	json_object_put(q);
}
