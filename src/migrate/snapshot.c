/* Snapshot and restore of a container VM (not built yet: reports so). */
#include "migrate.h"

int mig_snapshot(struct container *ct, const char *path, int stop_after, json_object **result,
		 struct gw_err *err)
{
	(void)ct, (void)path, (void)stop_after, (void)result;
	return gw_err_set(err, ENOSYS, "snapshot is not implemented yet");
}
