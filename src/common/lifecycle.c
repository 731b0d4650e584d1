/* The container lifecycle: the one table that says which state changes are legal
 * (created → running ⇄ paused → migrating → stopped | migrated; incoming → running). */
#include <string.h>

#include "godwit/container.h"

static const char *const names[CT_STATE_COUNT] = {
	[CT_CREATED] = "created",   [CT_RUNNING] = "running", [CT_PAUSED] = "paused",
	[CT_MIGRATING] = "migrating", [CT_STOPPED] = "stopped", [CT_MIGRATED] = "migrated",
	[CT_INCOMING] = "incoming",
};

/* allowed[from] is a bit set of the states `from` may change to. */
#define B(s) (1u << (s))
static const unsigned allowed[CT_STATE_COUNT] = {
	[CT_CREATED] = B(CT_RUNNING) | B(CT_STOPPED),
	[CT_RUNNING] = B(CT_PAUSED) | B(CT_MIGRATING) | B(CT_STOPPED),
	[CT_PAUSED] = B(CT_RUNNING) | B(CT_MIGRATING) | B(CT_STOPPED),
	/* a migration either fails (back to running/paused) or hands over */
	[CT_MIGRATING] = B(CT_RUNNING) | B(CT_PAUSED) | B(CT_STOPPED) | B(CT_MIGRATED),
	[CT_STOPPED] = 0,
	[CT_MIGRATED] = 0,
	[CT_INCOMING] = B(CT_RUNNING) | B(CT_PAUSED) | B(CT_STOPPED),
};
#undef B

const char *ct_state_name(enum ct_state s)
{
	return (unsigned)s < CT_STATE_COUNT ? names[s] : "unknown";
}

int ct_state_parse(const char *s, enum ct_state *out)
{
	for (int i = 0; i < CT_STATE_COUNT; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum ct_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int ct_check_transition(enum ct_state from, enum ct_state to, struct gw_err *err)
{
	if ((unsigned)from >= CT_STATE_COUNT || (unsigned)to >= CT_STATE_COUNT)
		return gw_err_set(err, EINVAL, "unknown container state");
	if (!(allowed[from] & (1u << to)))
		return gw_err_set(err, EINVAL, "container is %s, cannot become %s", names[from],
				  names[to]);
	return 0;
}
