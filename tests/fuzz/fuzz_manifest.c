/* libFuzzer target for the image parsers (src/image/oci.c): the first byte picks the parser
 * (docker manifest.json, OCI index, OCI manifest, image config, image reference), the rest
 * is the input. A parse that succeeds must give bounded, well-formed results. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "godwit/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err;
	if (size < 1)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 5) {
	case 0: {
		struct oci_docker_manifest m;
		if (oci_parse_docker_manifest(buf, len, &m, &err) == 0) {
			assert(m.n_images >= 1 && m.n_images <= OCI_MANIFESTS_MAX);
			for (size_t i = 0; i < m.n_images; i++) {
				assert(m.images[i].config[0] != '/');
				assert(m.images[i].n_layers <= OCI_LAYERS_MAX);
				for (size_t k = 0; k < m.images[i].n_layers; k++)
					assert(m.images[i].layers[k][0] != '/');
			}
			oci_docker_manifest_free(&m);
		}
		break;
	}
	case 1: {
		struct oci_index x;
		if (oci_parse_index(buf, len, &x, &err) == 0) {
			assert(x.n_manifests <= OCI_MANIFESTS_MAX);
			for (size_t i = 0; i < x.n_manifests; i++)
				assert(oci_valid_digest(x.manifests[i].digest));
			oci_index_free(&x);
		}
		break;
	}
	case 2: {
		struct oci_manifest m;
		if (oci_parse_manifest(buf, len, &m, &err) == 0) {
			assert(oci_valid_digest(m.config.digest) && m.n_layers <= OCI_LAYERS_MAX);
			for (size_t i = 0; i < m.n_layers; i++)
				assert(oci_valid_digest(m.layers[i].digest) && m.layers[i].size >= 0);
			oci_manifest_free(&m);
		}
		break;
	}
	case 3: {
		struct oci_config c;
		if (oci_parse_config(buf, len, &c, &err) == 0) {
			for (size_t i = 0; i < c.n_diff_ids; i++)
				assert(oci_valid_digest(c.diff_ids[i]));
			for (size_t i = 0; c.env && c.env[i]; i++)
				assert(strchr(c.env[i], '='));
			oci_config_free(&c);
		}
		break;
	}
	default: {
		char *s = strndup(buf, len < 300 ? len : 300), *out = NULL;
		if (s && oci_normalize_ref(s, &out, &err) == 0) {
			assert(strchr(out, ':') && !strstr(out, ".."));
			free(out);
		}
		free(s);
	}
	}
	return 0;
}
