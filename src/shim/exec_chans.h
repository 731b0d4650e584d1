/* Exec channel numbers (src/shim/exec_chans.c): chan 0 is the container's main process, 1..65535
 * one exec session each. A number is live from the EXEC that uses it until the agent's EXIT on
 * it, and is handed out again only after that, round robin, so that frames late for an old
 * session never reach a new one. */
#ifndef GODWIT_EXEC_CHANS_H
#define GODWIT_EXEC_CHANS_H

#include <stdint.h>

#define EXEC_CHAN_MAX 65535

struct exec_chans {
	uint8_t live[(EXEC_CHAN_MAX + 1) / 8];
	int next;		/* where the search for a free number starts (1..EXEC_CHAN_MAX) */
};

/* A free number, marked live; -1 when all EXEC_CHAN_MAX are live. */
int exec_chan_take(struct exec_chans *c);
/* The agent spoke on chan: live (after a move the destination learns the sessions the guest
 * still runs this way). exited: its EXIT, free again. chan 0 is ignored. */
void exec_chan_seen(struct exec_chans *c, int chan, int exited);
int exec_chan_live(const struct exec_chans *c, int chan);

#endif
