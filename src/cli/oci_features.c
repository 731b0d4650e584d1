/* godwit-runtime features: the runtime-spec "features" document, so a caller can see what
 * this runtime takes before it tries (docs/oci-runtime.md). */
#include <stdio.h>

#include "oci.h"

int oci_features(struct oci_rt *rt, int argc, char **argv)
{
	(void)rt;
	(void)argv;
	if (argc != 1)
		return oci_failf(rt, "features: takes no arguments");
	printf("{\n"
	       "  \"ociVersionMin\": \"1.0.0\",\n"
	       "  \"ociVersionMax\": \"" OCI_VERSION "\",\n"
	       "  \"hooks\": [],\n"
	       "  \"mountOptions\": [],\n"
	       "  \"linux\": {\n"
	       "    \"namespaces\": [\"pid\", \"network\", \"ipc\", \"uts\", \"mount\"],\n"
	       "    \"cgroup\": { \"v1\": false, \"v2\": false, \"systemd\": false }\n"
	       "  },\n"
	       "  \"annotations\": { \"io.godwit.runtime.vm\": \"qemu\" }\n"
	       "}\n");
	return 0;
}
