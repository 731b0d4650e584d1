/* Host-side test client for godwit-agent (tests/guest/boot-agent.sh): connects to the agent
 * port's unix socket, waits for HELLO, sends START with the given argv, relays STDOUT/STDERR
 * and exits with the container's status. Prints timings ("agentctl: hello after N ms") so the
 * test can report boot-to-HELLO time. Usage: agentctl SOCK TIMEOUT_S argv... */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <json-c/json.h>

#include "godwit/frame.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_sock(const char *path, double deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	while (now_ms() < deadline) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(20000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct gw_err err = { 0 };
	struct gw_link link;
	struct gw_frame f;
	double t0 = now_ms(), deadline;
	bool started = false;
	int fd, status = -1;

	if (argc < 4) {
		fprintf(stderr, "usage: agentctl SOCK TIMEOUT_S argv...\n");
		return 2;
	}
	deadline = t0 + atof(argv[2]) * 1000;
	fd = connect_sock(argv[1], deadline);
	if (fd < 0) {
		fprintf(stderr, "agentctl: cannot connect to %s\n", argv[1]);
		return 2;
	}
	fprintf(stderr, "agentctl: connected after %.0f ms\n", now_ms() - t0);
	gw_link_init(&link);
	while (status < 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = deadline - now_ms();

		if (gw_link_want_write(&link))
			pfd.events |= POLLOUT;
		if (left <= 0) {
			fprintf(stderr, "agentctl: timeout\n");
			return 3;
		}
		if (poll(&pfd, 1, (int)left + 1) <= 0)
			continue;
		if (pfd.revents & POLLIN) {
			ssize_t n = gw_link_read(&link, fd, &err);

			if (n == 0) {
				fprintf(stderr, "agentctl: agent closed the link\n");
				return 4;
			}
			if (n < 0 && n != -EAGAIN) {
				fprintf(stderr, "agentctl: %s\n", err.msg);
				return 4;
			}
		}
		while (gw_link_next(&link, &f) > 0) {
			struct json_object *o = NULL, *v;

			if (f.hdr.type == GW_FRAME_HELLO && !started) {
				struct json_object *start = json_object_new_object();
				struct json_object *av = json_object_new_array();

				fprintf(stderr, "agentctl: hello after %.0f ms: %s\n", now_ms() - t0,
					(char *)f.payload);
				for (int i = 3; i < argc; i++)
					json_object_array_add(av, json_object_new_string(argv[i]));
				json_object_object_add(start, "argv", av);
				json_object_object_add(start, "hostname",
						       json_object_new_string("godwit-test"));
				if (gw_link_send_json(&link, GW_FRAME_START, 0, start, &err) < 0)
					fprintf(stderr, "agentctl: %s\n", err.msg);
				json_object_put(start);
				started = true;
			} else if (f.hdr.type == GW_FRAME_STDOUT || f.hdr.type == GW_FRAME_STDERR) {
				FILE *out = f.hdr.type == GW_FRAME_STDOUT ? stdout : stderr;

				fwrite(f.payload, 1, f.hdr.len, out);
				fflush(out);
			} else if (f.hdr.type == GW_FRAME_EXIT && gw_frame_json(&f, &o, NULL) == 0 &&
				   json_object_object_get_ex(o, "status", &v)) {
				status = json_object_get_int(v);
				fprintf(stderr, "agentctl: exit %d after %.0f ms\n", status,
					now_ms() - t0);
			} else {
				fprintf(stderr, "agentctl: %s chan %u: %.*s\n",
					gw_frame_type_name(f.hdr.type), f.hdr.chan, (int)f.hdr.len,
					f.payload ? (char *)f.payload : "");
			}
			json_object_put(o);
			gw_frame_free(&f);
		}
		if (gw_link_want_write(&link) && gw_link_flush(&link, fd, &err) < 0) {
			fprintf(stderr, "agentctl: %s\n", err.msg);
			return 4;
		}
	}
	/* Acknowledge EXIT so the agent powers off promptly. */
	for (int i = 0; i < 50 && gw_link_want_write(&link); i++) {
		gw_link_flush(&link, fd, &err);
		usleep(10000);
	}
	gw_link_free(&link);
	close(fd);
	return status;
}
