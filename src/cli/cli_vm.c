/* What every new container VM gets from this host whatever made it (`godwit run`,
 * `godwit-runtime create`): its accelerator, its QEMU machine type, the guest kit, and the
 * free-page-hint device (docs/migration-policy.md). */
#include <stdio.h>
#include <string.h>

#include "shimctl.h"
#include "godwit/container.h"
#include "godwit/hv.h"
#include "godwit/util.h"

int cli_vm_basics(const struct gw_cli *cli, const char *umachine, struct ct_config *cfg,
		  struct gw_err *err)
{
	enum hv_accel accel;
	char reason[256], qv[64];
	int r = hv_choose_accel(cli->accel, &accel, reason, sizeof(reason), err);
	if (r < 0)
		return r;
	int vr = umachine ? 0 : hv_qemu_version(qv, sizeof(qv));
	if (umachine)
		snprintf(cfg->machine, sizeof(cfg->machine), "%s", umachine);
	else if (vr < 0 || hv_machine_for_version(qv, cfg->machine, sizeof(cfg->machine)) < 0)
		return gw_err_set(err, vr < 0 ? -vr : EINVAL, "cannot tell the version of %s (%s)",
				  hv_qemu_binary(), vr < 0 ? strerror(-vr) : qv);
	snprintf(cfg->accel, sizeof(cfg->accel), "%s", hv_accel_name(accel));
	cfg->free_page_hints = 1;
	return cli_kit_paths(cli, &cfg->kernel, &cfg->initrd, err);
}
