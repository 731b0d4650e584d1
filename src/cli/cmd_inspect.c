/* godwit inspect: containers' configuration and state as a JSON array, with Docker's field
 * names where a field means the same here (docs/cli.md lists them) and godwit's own under
 * "Godwit" (accelerator, machine type, lifecycle state, shim and QEMU). */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "godwit/container.h"
#include "godwit/hostnet.h"
#include "godwit/mount.h"
#include "godwit/util.h"

static const char *docker_status(enum ct_state s)
{
	switch (s) {
	case CT_CREATED: case CT_INCOMING: return "created";
	case CT_RUNNING: case CT_MIGRATING: return "running";
	case CT_PAUSED: return "paused";
	default: return "exited";
	}
}

static json_object *time_str(int64_t ns)
{
	char ts[40] = "0001-01-01T00:00:00Z"; /* docker's "never" */
	if (ns > 0)
		gw_fmt_rfc3339(ns, ts);
	return json_object_new_string(ts);
}

static json_object *state_json(const struct ct_status *st)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Status", json_object_new_string(docker_status(st->state)));
	json_object_object_add(o, "Running", json_object_new_boolean(st->state == CT_RUNNING ||
								     st->state == CT_MIGRATING));
	json_object_object_add(o, "Paused", json_object_new_boolean(st->state == CT_PAUSED));
	/* the process that holds the container on this host: its VM */
	json_object_object_add(o, "Pid", json_object_new_int(st->state == CT_STOPPED ||
							     st->state == CT_MIGRATED
							     ? 0 : st->qemu_pid));
	json_object_object_add(o, "ExitCode", json_object_new_int(st->exit_status < 0
								  ? 0 : st->exit_status));
	json_object_object_add(o, "StartedAt", time_str(st->started_ns));
	json_object_object_add(o, "FinishedAt", time_str(st->finished_ns));
	return o;
}

static json_object *network_json(const struct ct_config *c)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_object();
	json_object_object_add(o, "IPAddress", json_object_new_string(c->ip));
	json_object_object_add(o, "MacAddress", json_object_new_string(c->nic_mac));
	if (c->network[0]) {
		json_object *nets = json_object_new_object(), *n = json_object_new_object();
		json_object_object_add(n, "IPAddress", json_object_new_string(c->ip));
		json_object_object_add(n, "MacAddress", json_object_new_string(c->nic_mac));
		json_object_object_add(nets, c->network, n);
		json_object_object_add(o, "Networks", nets);
	}
	for (size_t i = 0; c->ports && c->ports[i]; i++) {
		struct gw_port p;
		struct gw_err err = { 0 };
		if (gw_port_from_str(c->ports[i], &p, &err) < 0)
			continue;
		char key[16], hp[8], ip[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = htonl(p.host_ip) };
		snprintf(key, sizeof(key), "%u/%s", p.ct_port, p.udp ? "udp" : "tcp");
		snprintf(hp, sizeof(hp), "%u", p.host_port);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		json_object *b = json_object_new_object();
		json_object_object_add(b, "HostIp", json_object_new_string(ip));
		json_object_object_add(b, "HostPort", json_object_new_string(hp));
		json_object *arr;
		if (!json_object_object_get_ex(ports, key, &arr)) {
			arr = json_object_new_array();
			json_object_object_add(ports, key, arr);
		}
		json_object_array_add(arr, b);
	}
	json_object_object_add(o, "Ports", ports);
	return o;
}

static json_object *inspect_one(const struct ct_config *c, const struct ct_status *st)
{
	json_object *o = json_object_new_object(), *cfg = json_object_new_object();
	char name[70];
	snprintf(name, sizeof(name), "/%s", c->name);
	json_object_object_add(o, "Id", json_object_new_string(c->name));
	json_object_object_add(o, "Name", json_object_new_string(name));
	json_object_object_add(o, "Created", time_str(c->created_ns));
	json_object_object_add(o, "Path", json_object_new_string(c->argv[0]));
	json_object *args = ct_strv_to_json(c->argv);
	json_object_array_del_idx(args, 0, 1);
	json_object_object_add(o, "Args", args);
	json_object_object_add(o, "State", state_json(st));
	json_object_object_add(o, "Image", json_object_new_string(c->image_id));
	json_object_object_add(o, "RestartCount", json_object_new_int(st->restarts));
	json_object_object_add(cfg, "Hostname", json_object_new_string(c->hostname ? c->hostname
										    : c->name));
	json_object_object_add(cfg, "User", json_object_new_string(c->user ? c->user : ""));
	json_object_object_add(cfg, "Env", ct_strv_to_json(c->env));
	json_object_object_add(cfg, "Cmd", ct_strv_to_json(c->argv));
	/* run -t and -i, as docker names them */
	json_object_object_add(cfg, "Tty", json_object_new_boolean(c->tty));
	json_object_object_add(cfg, "OpenStdin", json_object_new_boolean(c->open_stdin));
	json_object_object_add(cfg, "Image", json_object_new_string(c->image));
	json_object_object_add(cfg, "WorkingDir", json_object_new_string(c->cwd ? c->cwd : "/"));
	json_object_object_add(o, "Config", cfg);
	json_object *host = json_object_new_object(), *log = json_object_new_object();
	json_object_object_add(host, "Memory", json_object_new_int64((int64_t)c->mem_bytes));
	json_object_object_add(host, "NanoCpus", json_object_new_int64((int64_t)c->cpus *
									1000000000LL));
	json_object_object_add(host, "AutoRemove", json_object_new_boolean(c->auto_remove));
	json_object_object_add(log, "MaxSize", json_object_new_int64((int64_t)(
		c->log_max_size ? c->log_max_size : CT_LOG_MAX_SIZE_DEFAULT)));
	json_object_object_add(log, "MaxFile", json_object_new_int(c->log_max_file
		? c->log_max_file : CT_LOG_MAX_FILE_DEFAULT));
	json_object_object_add(host, "LogConfig", log);
	json_object *rp = json_object_new_object();
	json_object_object_add(rp, "Name", json_object_new_string(
		c->restart == CT_RESTART_ALWAYS ? "always"
		: c->restart == CT_RESTART_ON_FAILURE ? "on-failure" : "no"));
	json_object_object_add(rp, "MaximumRetryCount", json_object_new_int(c->restart_max));
	json_object_object_add(host, "RestartPolicy", rp);
	json_object_object_add(o, "HostConfig", host);
	json_object_object_add(o, "NetworkSettings", network_json(c));
	json_object *mounts = json_object_new_array();
	for (size_t i = 0; c->volumes && c->volumes[i]; i++) {
		struct gw_mount m;
		struct gw_err err = { 0 };
		if (gw_mount_parse(c->volumes[i], &m, &err) < 0)
			continue;
		json_object *v = json_object_new_object();
		json_object_object_add(v, "Type", json_object_new_string("volume"));
		json_object_object_add(v, "Name", json_object_new_string(m.name));
		json_object_object_add(v, "Destination", json_object_new_string(m.target));
		json_object_object_add(v, "RW", json_object_new_boolean(!m.ro));
		json_object_array_add(mounts, v);
	}
	json_object_object_add(o, "Mounts", mounts);
	json_object_object_add(o, "Platform", json_object_new_string("linux"));
	json_object *g = json_object_new_object();
	json_object_object_add(g, "State", json_object_new_string(ct_state_name(st->state)));
	json_object_object_add(g, "Detail", json_object_new_string(st->detail));
	json_object_object_add(g, "Accel", json_object_new_string(c->accel));
	json_object_object_add(g, "Machine", json_object_new_string(c->machine));
	json_object_object_add(g, "ShimPid", json_object_new_int(st->shim_pid));
	json_object_object_add(g, "QemuPid", json_object_new_int(st->qemu_pid));
	json_object_object_add(o, "Godwit", g);
	return o;
}

int cmd_inspect(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: godwit inspect CONTAINER...\n\nPrint containers' configuration "
			       "and state as a JSON array (Docker's field\nnames; godwit's own under "
			       "\"Godwit\").\n\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("inspect", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("inspect", "want at least one CONTAINER");
	json_object *all = json_object_new_array();
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct ct_config cfg;
		struct ct_status st;
		struct gw_err err = { 0 };
		if (ct_status_load(cli->root, argv[i], &st, &err) == 0 && st.state == CT_INCOMING)
			gw_err_set(&err, EAGAIN, "container %s is incoming: its config comes with "
				   "its source", argv[i]);
		if (err.msg[0] || ct_config_load(cli->root, argv[i], &cfg, &err) < 0) {
			rc = cli_fail("inspect", &err);
			continue;
		}
		json_object_array_add(all, inspect_one(&cfg, &st));
		ct_config_free(&cfg);
	}
	printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	return rc;
}
