/* libFuzzer target for the agent frame decoder (src/common/frame.c): the input is fed to a
 * link as received bytes, split at a position taken from the first byte, and every accepted
 * frame's JSON is parsed; the same bytes are also tried as saved link state (gw_link_load),
 * and as the base64 text a migration's COMMIT carries that state in (gw_b64_decode). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "godwit/frame.h"
#include "godwit/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err = { 0 };
	struct gw_link l, saved;
	struct gw_frame f;
	size_t cut;

	if (size < 1)
		return 0;
	cut = data[0] % size;
	gw_link_init(&l);
	l.rd.hunt = data[0] & 1;
	if (gw_link_feed(&l, data + 1, cut, &err) == 0)
		gw_link_feed(&l, data + 1 + cut, size - 1 - cut, &err);
	while (gw_link_next(&l, &f) > 0) {
		struct json_object *o = NULL;
		uint32_t a, b;

		if (gw_frame_json(&f, &o, &err) == 0)
			json_object_put(o);
		if (gw_link_parse_sync(&f, &a, &b, &err) == 0)
			gw_link_peer_reset(&l, a, GW_FRAME_HELLO, &err);
		gw_frame_free(&f);
	}
	gw_link_free(&l);
	gw_link_init(&saved);
	gw_link_load(&saved, data, size, &err);
	gw_link_free(&saved);
	char *text = malloc(size + 1);
	unsigned char *bytes;
	size_t n;
	if (text) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (gw_b64_decode(text, &bytes, &n) == 0) {
			gw_link_init(&saved);
			gw_link_load(&saved, bytes, n, &err);
			gw_link_free(&saved);
			free(bytes);
		}
		free(text);
	}
	return 0;
}
