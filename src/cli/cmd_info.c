/* godwit info: versions, the accelerator auto would choose and why, and the paths in use. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/hv.h"
#include "godwit/version.h"

int cmd_info(struct gw_cli *cli, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: godwit info\n\nShow versions, the accelerator chosen and why, "
		       "and paths.\n\n  -h, --help  this help\n");
		return 0;
	}
	if (argc > 1)
		return cli_usage_error("info", "unexpected argument '%s'", argv[1]);
	char qv[128] = "not found", reason[256] = "";
	hv_qemu_version(qv, sizeof(qv));
	enum hv_accel accel;
	struct gw_err err = { 0 };
	int ar = hv_choose_accel(cli->accel, &accel, reason, sizeof(reason), &err);
	char *kernel = NULL, *initrd = NULL;
	struct gw_err kerr = { 0 };
	cli_kit_paths(cli, &kernel, &initrd, &kerr);
	char **names = NULL;
	size_t n = 0, running = 0;
	if (ct_list(cli->root, &names, NULL) == 0) {
		for (; names[n]; n++) {
			struct ct_status st;
			if (ct_status_load(cli->root, names[n], &st, NULL) == 0 &&
			    st.state == CT_RUNNING)
				running++;
		}
		ct_names_free(names);
	}
	printf("godwit:       %s\n", GODWIT_VERSION);
	printf("qemu:         %s (%s)\n", qv, hv_qemu_binary());
	char machine[HV_MACHINE_MAX];
	int major, minor;
	if (hv_machine_for_version(qv, machine, sizeof(machine)) == 0)
		printf("  machine:    %s (for new containers)\n", machine);
	printf("accelerator:  %s (--accel %s)\n", ar == 0 ? hv_accel_name(accel) : "none",
	       cli->accel);
	printf("  why:        %s\n", ar == 0 ? reason : err.msg);
	if (ar == 0 && accel == HV_ACCEL_TCG && hv_version_parse(qv, &major, &minor) == 0)
		printf("  live moves: %s\n", major >= HV_TCG_MIGRATE_MIN_MAJOR
		       ? "yes" : "refused: QEMU before 9.0 loses guest writes in TCG migration "
				 "(--offline works)");
	printf("root:         %s\n", cli->root);
	printf("kernel:       %s\n", kernel ? kernel : kerr.msg);
	printf("initrd:       %s\n", initrd ? initrd : "-");
	printf("containers:   %zu (%zu running)\n", n, running);
	free(kernel);
	free(initrd);
	return 0;
}
