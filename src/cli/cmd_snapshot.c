/* godwit snapshot: write a running container's complete state (memory, devices, disk, agent
 * link, output log) to one file through its shim (docs/snapshot.md). The container pauses for
 * the write and runs on afterwards, or stops with --stop. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/knobs.h"
#include "godwit/util.h"

/* The shim runs elsewhere (its own cwd): hand it an absolute path whose directory exists. */
static char *absolute_path(const char *path, struct gw_err *err)
{
	cleanup_free char *copy = strdup(path);
	if (!copy) {
		gw_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		gw_err_set(err, EINVAL, "'%s' names a directory, not a file", path);
		return NULL;
	}
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash)
		*slash = '\0';
	cleanup_free char *rdir = realpath(dir, NULL);
	if (!rdir) {
		gw_err_sys(err, errno, "directory of %s", path);
		return NULL;
	}
	char *out = gw_strdup_printf("%s/%s", strcmp(rdir, "/") ? rdir : "", base);
	if (!out)
		gw_err_set(err, ENOMEM, "out of memory");
	else if (strlen(out) >= PATH_MAX - 16) {
		gw_err_set(err, ENAMETOOLONG, "path too long: %s", path);
		free(out);
		out = NULL;
	}
	return out;
}

int cmd_snapshot(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stop", no_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int stop = 0, json = 0, c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': stop = 1; break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: godwit snapshot [OPTIONS] CONTAINER FILE\n\n"
			       "Write a running container's complete state (memory, devices, disk,\n"
			       "output log) to FILE. The container pauses while it is written and runs\n"
			       "on afterwards. FILE is replaced only once the new snapshot is complete.\n"
			       "`godwit restore FILE` continues it, here or on another host.\n\n"
			       "      --stop  stop the container after writing instead of resuming it\n"
			       "      --json  print the figures as one JSON object\n"
			       "  -h, --help  this help\n");
			return 0;
		default: return cli_usage_error("snapshot", "invalid option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("snapshot", "want CONTAINER and FILE");
	const char *name = argv[optind];
	struct gw_err err = { 0 };
	cleanup_free char *path = absolute_path(argv[optind + 1], &err);
	if (!path)
		return cli_fail("snapshot", &err);
	int fd = cli_connect(cli, name, &err);
	if (fd < 0)
		return cli_fail("snapshot", &err);
	json_object *args = json_object_new_object(), *res = NULL;
	json_object_object_add(args, "path", json_object_new_string(path));
	json_object_object_add(args, "stop", json_object_new_boolean(stop));
	/* the host's snapshot key: the file gets an HMAC (docs/security.md) */
	cleanup_free char *key = gw_knobs()->snapshot_key
					 ? absolute_path(gw_knobs()->snapshot_key, &err) : NULL;
	if (gw_knobs()->snapshot_key && !key) {
		json_object_put(args);
		close(fd);
		return cli_fail("snapshot", &err);
	}
	if (key)
		json_object_object_add(args, "key_file", json_object_new_string(key));
	struct ctl_reader rd = { 0 };
	int r = ctl_call(fd, &rd, "snapshot", args, &res, NULL, NULL, -1, &err);
	json_object_put(args);
	ctl_reader_free(&rd);
	close(fd);
	if (r < 0)
		return cli_fail("snapshot", &err);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
	} else {
		json_object *v;
		int64_t bytes = json_object_object_get_ex(res, "bytes", &v) ? json_object_get_int64(v) : 0;
		int64_t ms = json_object_object_get_ex(res, "ms", &v) ? json_object_get_int64(v) : 0;
		int64_t paused = json_object_object_get_ex(res, "paused_ms", &v)
					 ? json_object_get_int64(v) : 0;
		/* the guest's zero pages are holes in the file */
		int64_t alloc = json_object_object_get_ex(res, "allocated", &v)
					? json_object_get_int64(v) : bytes;
		printf("snapshot of %s written to %s: %.1f MiB in %.2f s (paused %lld ms, %.1f MiB "
		       "allocated)%s\n", name, path, (double)bytes / 1048576, (double)ms / 1000,
		       (long long)paused, (double)alloc / 1048576,
		       stop ? ", container stopped" : "");
	}
	json_object_put(res);
	return 0;
}
