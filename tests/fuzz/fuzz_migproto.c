/* libFuzzer target for the migration protocol receiver: arbitrary bytes arrive on the socket
 * (headers, JSON control messages, CONFIG with the container's config) and must give clean
 * errors, never a crash. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "godwit/container.h"
#include "godwit/migproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err;
	struct mig_hdr h;
	if (size >= MIG_HDR_SIZE)
		mig_hdr_decode(data, &h, &err);
	if (size > 100000)
		return 0;	/* stay below the socket buffer: the writer must not block */

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return 0;
	int one = 256 * 1024;
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	if (write(sp[0], data, size) != (ssize_t)size)
		goto out;
	shutdown(sp[0], SHUT_WR);
	struct mig_conn c;
	mig_conn_init(&c, sp[1], 100);
	/* first a CONFIG as the destination reads it, then whatever follows as raw messages */
	struct json_object *o = NULL;
	if (mig_recv_json(&c, MIG_CONFIG, &o, &err) == 0) {
		struct mig_config cfg;
		if (mig_config_from_json(o, &cfg, &err) == 0)
			mig_config_free(&cfg);
		/* ... and the container's config in it (volume specs, ports, argv) */
		struct json_object *c;
		struct ct_config ct;
		if (json_object_object_get_ex(o, "container", &c) &&
		    ct_config_from_json(c, &ct, &err) == 0)
			ct_config_free(&ct);
		json_object_put(o);
	}
	for (int i = 0; i < 16; i++) {
		struct mig_msg m;
		if (mig_recv(&c, 100, &m, &err) < 0)
			break;
		mig_msg_free(&m);
	}
out:
	close(sp[0]);
	close(sp[1]);
	return 0;
}
