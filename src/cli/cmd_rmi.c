/* `godwit rmi REF...`: untag or remove images; an image a container uses is refused. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "godwit/image.h"

static void print_line(const char *line, void *arg)
{
	(void)arg;
	printf("%s\n", line);
}

int cmd_rmi(struct gw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, status = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("Usage: godwit rmi IMAGE [IMAGE...]\n\n"
			       "Remove images by name[:tag], id or unambiguous id prefix. A name:tag\n"
			       "only untags when the image has other tags; an image that a container\n"
			       "uses is not removed.\n\n"
			       "  -h, --help  this help\n");
			return 0;
		}
		return cli_usage_error("rmi", "bad option");
	}
	if (optind >= argc)
		return cli_usage_error("rmi", "expected at least one image");
	for (int i = optind; i < argc; i++) {
		struct gw_err err = { 0 };
		if (gw_image_remove(cli->root, argv[i], print_line, NULL, &err) < 0)
			status = cli_fail("rmi", &err);
	}
	return status;
}
