/* libFuzzer target for the hostnet parsers (src/hostnet/cidr.c, record.c, check.c): the first
 * byte picks the parser (a CIDR, an IPv4 address, a -p spec, a record's port string, a
 * network record on disk, which is then leased from), the rest is the input. What parses must be what godwit would have written. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "godwit/hostnet.h"
#include "godwit/util.h"

static char root[64];

static void remove_root(void)
{
	struct gw_err err;
	gw_rm_rf(root, &err);
}

/* the scratch root of this fuzzing process, made once, removed at exit */
static const char *scratch_root(void)
{
	if (!root[0]) {
		strcpy(root, "/tmp/godwit-fuzz-net.XXXXXX");
		assert(mkdtemp(root));
		atexit(remove_root);
		char dir[96];
		snprintf(dir, sizeof(dir), "%s/networks", root);
		assert(mkdir(dir, 0700) == 0);
	}
	return root;
}

static void check_record(const char *buf, size_t len)
{
	const char *root = scratch_root();
	char path[128];
	struct gw_err err;
	struct gw_network n;
	snprintf(path, sizeof(path), "%s/networks/lan.json", root);
	assert(gw_write_file(path, buf, len, 0600, &err) == 0);
	if (gw_network_load(root, "lan", &n, &err) < 0)
		return;
	uint32_t mask = n.prefix ? ~0u << (32 - n.prefix) : 0;
	assert(n.prefix >= 8 && n.prefix <= 30 && (n.subnet & ~mask) == 0);
	assert((n.gateway & mask) == n.subnet && n.gateway != n.subnet);
	assert(gw_network_leases(root, "lan", &err) >= 0);
	uint32_t ip = 0;
	if (gw_network_lease(root, "lan", "fuzz", &ip, &err) == 0)
		assert((ip & mask) == n.subnet && ip != n.gateway && ip != n.subnet);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err;
	if (size < 1 || size > 65536)
		return 0;
	char *s = strndup((const char *)data + 1, size - 1);
	uint32_t a;
	int p;
	char out[GW_CIDR_MAX];
	struct gw_port ports[GW_PORTS_MAX], back;
	char ps[GW_PORT_STR_MAX];
	size_t n = 0;
	switch (data[0] % 5) {
	case 0:
		if (gw_parse_cidr(s, &a, &p, &err) == 0) /* what parses prints back the same */
			assert(!strcmp(gw_fmt_cidr(a, p, out), s));
		break;
	case 1:
		if (gw_parse_ipv4(s, &a, &err) == 0)
			assert(!strcmp(gw_fmt_ipv4(a, out), s));
		break;
	case 2: /* -p specs: each port formats into what reads back the same */
		if (gw_port_parse(s, ports, GW_PORTS_MAX, &n, &err) == 0)
			for (size_t i = 0; i < n; i++) {
				assert(ports[i].host_port && ports[i].ct_port);
				gw_port_fmt(&ports[i], ps);
				assert(gw_port_from_str(ps, &back, &err) == 0);
				assert(!memcmp(&back, &ports[i], sizeof(back)));
			}
		break;
	case 3: /* a record's port string */
		if (gw_port_from_str(s, &back, &err) == 0)
			assert(back.host_port && back.ct_port);
		break;
	default: check_record((const char *)data + 1, size - 1);
	}
	free(s);
	return 0;
}
