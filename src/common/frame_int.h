/* Byte-order helpers of the agent link's frames, shared by frame.c and link.c. */
#ifndef GODWIT_FRAME_INT_H
#define GODWIT_FRAME_INT_H

#include <stdint.h>

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

#endif
