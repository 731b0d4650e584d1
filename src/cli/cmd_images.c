/* `godwit images`: list the images of the store as a table (or only their ids with -q). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "godwit/image.h"

/* docker prints sizes in SI units: 4.26MB. */
static void human(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)b;
	size_t u = 0;
	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.3g%s" : "%.0f%s", v, units[u]);
}

int cmd_images(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "no-trunc", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int quiet = 0, notrunc = 0, c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = 1; break;
		case 'n': notrunc = 1; break;
		case 'h':
			printf("Usage: godwit images [-q] [--no-trunc]\n\nList images.\n\n"
			       "  -q, --quiet     only image ids, one line per image\n"
			       "      --no-trunc  full image ids (sha256:<64 hex>)\n"
			       "  -h, --help      this help\n");
			return 0;
		default: return cli_usage_error("images", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("images", "unexpected argument '%s'", argv[optind]);
	struct gw_err err = { 0 };
	struct gw_image_info *l;
	size_t n;
	if (gw_image_list(cli->root, &l, &n, &err) < 0)
		return cli_fail("images", &err);
	if (!quiet)
		printf("%-30s %-15s %-*s %s\n", "REPOSITORY", "TAG", notrunc ? 71 : 12, "IMAGE ID",
		       "SIZE");
	for (size_t i = 0; i < n; i++) {
		if (quiet) {
			/* one line per image, even with several tags */
			if (i == 0 || strcmp(l[i].id, l[i - 1].id))
				printf("%.*s\n", notrunc ? 71 : 12, notrunc ? l[i].id : l[i].id + 7);
			continue;
		}
		char size[32];
		human(l[i].size, size, sizeof(size));
		printf("%-30s %-15s %-*.*s %s\n", l[i].repo ? l[i].repo : "<none>",
		       l[i].tag ? l[i].tag : "<none>", notrunc ? 71 : 12, notrunc ? 71 : 12,
		       notrunc ? l[i].id : l[i].id + 7, size);
	}
	gw_image_info_free(l, n);
	return 0;
}
