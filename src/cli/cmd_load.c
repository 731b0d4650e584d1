/* `godwit load -i PATH`: load the images of a docker-archive or OCI layout (directory or tar)
 * into the store and print what was loaded, as `docker load` does. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "godwit/image.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: godwit load [-q] -i PATH\n"
		   "       godwit load [-q] PATH\n\n"
		   "Load images from a docker-archive tar (docker save) or an OCI image layout\n"
		   "(directory or tar; plain, gzip, zstd, xz or bzip2). Every blob is checked against\n"
		   "its digest and every layer entry against path escapes.\n\n"
		   "  -i, --input PATH   the archive or layout directory\n"
		   "  -q, --quiet        print nothing on success\n"
		   "  -h, --help         this help\n");
}

int cmd_load(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *input = NULL;
	int quiet = 0, c;
	while ((c = getopt_long(argc, argv, "i:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': input = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: return cli_usage_error("load", "bad option");
		}
	}
	if (optind < argc && !input)
		input = argv[optind++];
	if (!input || optind < argc)
		return cli_usage_error("load", "expected exactly one input (-i PATH)");
	struct gw_err err = { 0 };
	struct gw_image_loaded *res;
	size_t n;
	if (gw_image_load(cli->root, input, &res, &n, &err) < 0)
		return cli_fail("load", &err);
	for (size_t i = 0; !quiet && i < n; i++) {
		if (!res[i].tags[0])
			printf("Loaded image ID: %s\n", res[i].id);
		for (size_t t = 0; res[i].tags[t]; t++)
			printf("Loaded image: %s\n", res[i].tags[t]);
	}
	gw_image_loaded_free(res, n);
	return 0;
}
