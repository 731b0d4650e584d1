/* Exec channel numbers (exec_chans.h): a bitmap of the live ones and a round-robin cursor. */
#include "exec_chans.h"

int exec_chan_live(const struct exec_chans *c, int chan)
{
	if (chan < 1 || chan > EXEC_CHAN_MAX)
		return 0;
	return (c->live[chan / 8] >> (chan % 8)) & 1;
}

static void set_live(struct exec_chans *c, int chan, int on)
{
	uint8_t bit = (uint8_t)(1u << (chan % 8));
	if (on)
		c->live[chan / 8] |= bit;
	else
		c->live[chan / 8] &= (uint8_t)~bit;
}

int exec_chan_take(struct exec_chans *c)
{
	int start = c->next >= 1 && c->next <= EXEC_CHAN_MAX ? c->next : 1;
	for (int i = 0; i < EXEC_CHAN_MAX; i++) {
		int chan = (start - 1 + i) % EXEC_CHAN_MAX + 1;
		if (!exec_chan_live(c, chan)) {
			set_live(c, chan, 1);
			c->next = chan % EXEC_CHAN_MAX + 1;
			return chan;
		}
	}
	return -1;
}

void exec_chan_seen(struct exec_chans *c, int chan, int exited)
{
	if (chan >= 1 && chan <= EXEC_CHAN_MAX)
		set_live(c, chan, !exited);
}
