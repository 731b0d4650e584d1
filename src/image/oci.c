/* Pure parsers for what an image brings: OCI image indexes and manifests, docker-archive
 * manifest.json, image configs; plus sha256 digests (OpenSSL EVP) and image references.
 * Everything parsed here is untrusted: sizes, counts and string lengths are bounded, digests and
 * paths are checked, and no parser touches the file system (tests/fuzz/fuzz_manifest.c). */
#include <ctype.h>
#include <string.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "godwit/image.h"
#include "godwit/util.h"

#define STRV_MAX 4096		/* elements of Env/Cmd/Entrypoint/RepoTags */
#define STR_MAX 65536		/* bytes of one string */

static void json_putp(json_object **o) { if (*o) json_object_put(*o); }
#define cleanup_json __attribute__((cleanup(json_putp)))

static int parse_json(const char *buf, size_t len, const char *what, json_object **out,
		      struct gw_err *err)
{
	if (len > OCI_JSON_MAX)
		return gw_err_set(err, EFBIG, "%s: larger than %u bytes", what, OCI_JSON_MAX);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return gw_err_set(err, ENOMEM, "%s: out of memory", what);
	json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || je != json_tokener_success) {
		json_object_put(o);
		return gw_err_set(err, EINVAL, "%s: invalid JSON: %s", what,
				  je == json_tokener_continue ? "truncated"
							      : json_tokener_error_desc(je));
	}
	for (; end < len; end++) {
		if (!isspace((unsigned char)buf[end])) {
			json_object_put(o);
			return gw_err_set(err, EINVAL, "%s: trailing data after JSON", what);
		}
	}
	*out = o;
	return 0;
}

/* A string member: -ENOENT if absent or null (callers decide), -EINVAL if not a clean string. */
static int get_str(json_object *obj, const char *key, const char *what, char **out,
		   struct gw_err *err)
{
	json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string))
		return gw_err_set(err, EINVAL, "%s: %s is not a string", what, key);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n > STR_MAX || strlen(s) != n)
		return gw_err_set(err, EINVAL, "%s: %s is too long or contains NUL", what, key);
	*out = strdup(s);
	return *out ? 0 : gw_err_set(err, ENOMEM, "out of memory");
}

void oci_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A string array member (or null/absent: *out = NULL). */
static int get_strv(json_object *obj, const char *key, const char *what, char ***out,
		    size_t *count, struct gw_err *err)
{
	json_object *v;
	*out = NULL;
	if (count)
		*count = 0;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return gw_err_set(err, EINVAL, "%s: %s is not an array", what, key);
	size_t n = json_object_array_length(v);
	if (n > STRV_MAX)
		return gw_err_set(err, E2BIG, "%s: %s has more than %d elements", what, key,
				  STRV_MAX);
	char **sv = calloc(n + 1, sizeof(*sv));
	if (!sv)
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_object_get_string(e);
		size_t l = (size_t)json_object_get_string_len(e);
		if (!json_object_is_type(e, json_type_string) || l > STR_MAX || strlen(s) != l) {
			oci_strv_free(sv);
			return gw_err_set(err, EINVAL, "%s: %s[%zu] is not a clean string", what,
					  key, i);
		}
		if (!(sv[i] = strdup(s))) {
			oci_strv_free(sv);
			return gw_err_set(err, ENOMEM, "out of memory");
		}
	}
	*out = sv;
	if (count)
		*count = n;
	return 0;
}

int oci_valid_digest(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7))
		return 0;
	for (int i = 0; i < 64; i++)
		if (!isdigit((unsigned char)d[7 + i]) && !(d[7 + i] >= 'a' && d[7 + i] <= 'f'))
			return 0;
	return d[71] == '\0';
}

static int check_schema(json_object *o, const char *what, struct gw_err *err)
{
	json_object *v;
	if (!json_object_is_type(o, json_type_object))
		return gw_err_set(err, EINVAL, "%s: not a JSON object", what);
	if (!json_object_object_get_ex(o, "schemaVersion", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 2)
		return gw_err_set(err, EINVAL, "%s: schemaVersion is not 2", what);
	return 0;
}

static void desc_free(struct oci_descriptor *d)
{
	free(d->ref_name);
	d->ref_name = NULL;
}

static int parse_descriptor(json_object *o, const char *what, struct oci_descriptor *d,
			    struct gw_err *err)
{
	json_object *v, *ann, *plat;
	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return gw_err_set(err, EINVAL, "%s: descriptor is not an object", what);
	cleanup_free char *mt = NULL, *dg = NULL;
	int r = get_str(o, "mediaType", what, &mt, err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (mt && strlen(mt) >= sizeof(d->media_type))
		return gw_err_set(err, EINVAL, "%s: mediaType too long", what);
	strcpy(d->media_type, mt ? mt : "");
	r = get_str(o, "digest", what, &dg, err);
	if (r == -ENOENT)
		return gw_err_set(err, EINVAL, "%s: descriptor without digest", what);
	if (r < 0)
		return r;
	if (!oci_valid_digest(dg))
		return gw_err_set(err, EINVAL, "%s: unsupported or malformed digest '%.80s' "
				  "(only sha256:<64 hex> is accepted)", what, dg);
	strcpy(d->digest, dg);
	if (!json_object_object_get_ex(o, "size", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return gw_err_set(err, EINVAL, "%s: descriptor %s has no valid size", what, dg);
	d->size = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "annotations", &ann) &&
	    json_object_is_type(ann, json_type_object)) {
		r = get_str(ann, "io.containerd.image.name", what, &d->ref_name, err);
		if (r == -ENOENT)
			r = get_str(ann, "org.opencontainers.image.ref.name", what, &d->ref_name,
				    err);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (json_object_object_get_ex(o, "platform", &plat) &&
	    json_object_is_type(plat, json_type_object)) {
		const char *os = NULL, *arch = NULL;
		if (json_object_object_get_ex(plat, "os", &v))
			os = json_object_get_string(v);
		if (json_object_object_get_ex(plat, "architecture", &v))
			arch = json_object_get_string(v);
		d->foreign_platform = (os && strcmp(os, "linux")) || (arch && strcmp(arch, "amd64"));
	}
	return 0;
}

void oci_index_free(struct oci_index *x)
{
	for (size_t i = 0; i < x->n_manifests; i++)
		desc_free(&x->manifests[i]);
	free(x->manifests);
	memset(x, 0, sizeof(*x));
}

int oci_parse_index(const char *buf, size_t len, struct oci_index *out, struct gw_err *err)
{
	cleanup_json json_object *o = NULL;
	json_object *arr;
	memset(out, 0, sizeof(*out));
	int r = parse_json(buf, len, "image index", &o, err);
	if (r < 0 || (r = check_schema(o, "image index", err)) < 0)
		return r;
	if (!json_object_object_get_ex(o, "manifests", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return gw_err_set(err, EINVAL, "image index: no manifests array");
	size_t n = json_object_array_length(arr);
	if (n > OCI_MANIFESTS_MAX)
		return gw_err_set(err, E2BIG, "image index: more than %d manifests",
				  OCI_MANIFESTS_MAX);
	struct oci_index x = { .manifests = calloc(n ? n : 1, sizeof(*x.manifests)) };
	if (!x.manifests)
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r = parse_descriptor(json_object_array_get_idx(arr, i), "image index",
				     &x.manifests[i], err);
		x.n_manifests = i + 1;
		if (r < 0) {
			oci_index_free(&x);
			return r;
		}
	}
	*out = x;
	return 0;
}

static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
};

void oci_manifest_free(struct oci_manifest *m)
{
	desc_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		desc_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

int oci_parse_manifest(const char *buf, size_t len, struct oci_manifest *out, struct gw_err *err)
{
	cleanup_json json_object *o = NULL;
	json_object *cfg, *arr;
	memset(out, 0, sizeof(*out));
	int r = parse_json(buf, len, "image manifest", &o, err);
	if (r < 0 || (r = check_schema(o, "image manifest", err)) < 0)
		return r;
	if (!json_object_object_get_ex(o, "config", &cfg))
		return gw_err_set(err, EINVAL, "image manifest: no config descriptor");
	if (!json_object_object_get_ex(o, "layers", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return gw_err_set(err, EINVAL, "image manifest: no layers array");
	size_t n = json_object_array_length(arr);
	if (n > OCI_LAYERS_MAX)
		return gw_err_set(err, E2BIG, "image manifest: more than %d layers", OCI_LAYERS_MAX);
	struct oci_manifest m = { .layers = calloc(n ? n : 1, sizeof(*m.layers)) };
	if (!m.layers)
		return gw_err_set(err, ENOMEM, "out of memory");
	r = parse_descriptor(cfg, "image manifest config", &m.config, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = parse_descriptor(json_object_array_get_idx(arr, i), "image manifest layer",
				     &m.layers[i], err);
		m.n_layers = i + 1;
		size_t k = 0;
		while (r == 0 && k < ARRAY_SIZE(layer_types) &&
		       strcmp(m.layers[i].media_type, layer_types[k]))
			k++;
		if (r == 0 && k == ARRAY_SIZE(layer_types))
			r = gw_err_set(err, EINVAL, "image manifest: layer %zu has unsupported media "
				       "type '%s'", i + 1, m.layers[i].media_type);
	}
	if (r < 0) {
		oci_manifest_free(&m);
		return r;
	}
	*out = m;
	return 0;
}

/* A path inside an archive: relative, no "..", bounded. */
static int check_rel_path(const char *p, const char *what, struct gw_err *err)
{
	if (!p || !*p || p[0] == '/' || strlen(p) > LAYER_PATH_MAX)
		return gw_err_set(err, EINVAL, "%s: bad path '%.200s'", what, p ? p : "");
	for (const char *c = p; *c;) {
		size_t l = strcspn(c, "/");
		if (l == 2 && !strncmp(c, "..", 2))
			return gw_err_set(err, EINVAL, "%s: path '%.200s' leaves the archive", what,
					  p);
		c += l;
		c += *c == '/';
	}
	return 0;
}

void oci_docker_manifest_free(struct oci_docker_manifest *m)
{
	for (size_t i = 0; i < m->n_images; i++) {
		free(m->images[i].config);
		oci_strv_free(m->images[i].repo_tags);
		oci_strv_free(m->images[i].layers);
	}
	free(m->images);
	memset(m, 0, sizeof(*m));
}

static int parse_docker_image(json_object *o, struct oci_docker_image *im, struct gw_err *err)
{
	const char *what = "manifest.json";
	if (!json_object_is_type(o, json_type_object))
		return gw_err_set(err, EINVAL, "%s: entry is not an object", what);
	int r = get_str(o, "Config", what, &im->config, err);
	if (r == -ENOENT)
		return gw_err_set(err, EINVAL, "%s: entry without Config", what);
	if (r < 0 || (r = check_rel_path(im->config, what, err)) < 0)
		return r;
	size_t nt;
	if ((r = get_strv(o, "RepoTags", what, &im->repo_tags, &nt, err)) < 0)
		return r;
	if (nt > OCI_TAGS_MAX)
		return gw_err_set(err, E2BIG, "%s: more than %d RepoTags", what, OCI_TAGS_MAX);
	if ((r = get_strv(o, "Layers", what, &im->layers, &im->n_layers, err)) < 0)
		return r;
	if (!im->layers)
		return gw_err_set(err, EINVAL, "%s: entry without Layers", what);
	if (im->n_layers > OCI_LAYERS_MAX)
		return gw_err_set(err, E2BIG, "%s: more than %d layers", what, OCI_LAYERS_MAX);
	for (size_t i = 0; i < im->n_layers; i++)
		if ((r = check_rel_path(im->layers[i], what, err)) < 0)
			return r;
	return 0;
}

int oci_parse_docker_manifest(const char *buf, size_t len, struct oci_docker_manifest *out,
			      struct gw_err *err)
{
	cleanup_json json_object *o = NULL;
	memset(out, 0, sizeof(*out));
	int r = parse_json(buf, len, "manifest.json", &o, err);
	if (r < 0)
		return r;
	if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) == 0)
		return gw_err_set(err, EINVAL, "manifest.json: not a non-empty array");
	size_t n = json_object_array_length(o);
	if (n > OCI_MANIFESTS_MAX)
		return gw_err_set(err, E2BIG, "manifest.json: more than %d images",
				  OCI_MANIFESTS_MAX);
	struct oci_docker_manifest m = { .images = calloc(n, sizeof(*m.images)) };
	if (!m.images)
		return gw_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m.n_images = i + 1;
		r = parse_docker_image(json_object_array_get_idx(o, i), &m.images[i], err);
		if (r < 0) {
			oci_docker_manifest_free(&m);
			return r;
		}
	}
	*out = m;
	return 0;
}

void oci_config_free(struct oci_config *c)
{
	oci_strv_free(c->entrypoint);
	oci_strv_free(c->cmd);
	oci_strv_free(c->env);
	oci_strv_free(c->diff_ids);
	free(c->workdir);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

static int parse_config_obj(json_object *o, struct oci_config *c, struct gw_err *err)
{
	const char *what = "image config";
	json_object *cfg, *rootfs, *v;
	int r;
	if (!json_object_is_type(o, json_type_object))
		return gw_err_set(err, EINVAL, "%s: not a JSON object", what);
	if (json_object_object_get_ex(o, "config", &cfg) && cfg) {
		if (!json_object_is_type(cfg, json_type_object))
			return gw_err_set(err, EINVAL, "%s: config is not an object", what);
		if ((r = get_strv(cfg, "Entrypoint", what, &c->entrypoint, NULL, err)) < 0 ||
		    (r = get_strv(cfg, "Cmd", what, &c->cmd, NULL, err)) < 0 ||
		    (r = get_strv(cfg, "Env", what, &c->env, NULL, err)) < 0)
			return r;
		for (size_t i = 0; c->env && c->env[i]; i++)
			if (!strchr(c->env[i], '=') || c->env[i][0] == '=')
				return gw_err_set(err, EINVAL, "%s: Env entry '%.100s' is not K=V",
						  what, c->env[i]);
		if ((r = get_str(cfg, "WorkingDir", what, &c->workdir, err)) < 0 && r != -ENOENT)
			return r;
		if ((r = get_str(cfg, "User", what, &c->user, err)) < 0 && r != -ENOENT)
			return r;
	}
	if (!json_object_object_get_ex(o, "rootfs", &rootfs) ||
	    !json_object_is_type(rootfs, json_type_object))
		return gw_err_set(err, EINVAL, "%s: no rootfs object", what);
	if (!json_object_object_get_ex(rootfs, "type", &v) || !gw_json_streq(v, "layers"))
		return gw_err_set(err, EINVAL, "%s: rootfs.type is not \"layers\"", what);
	if ((r = get_strv(rootfs, "diff_ids", what, &c->diff_ids, &c->n_diff_ids, err)) < 0)
		return r;
	if (!c->diff_ids)
		return gw_err_set(err, EINVAL, "%s: no rootfs.diff_ids", what);
	if (c->n_diff_ids > OCI_LAYERS_MAX)
		return gw_err_set(err, E2BIG, "%s: more than %d layers", what, OCI_LAYERS_MAX);
	for (size_t i = 0; i < c->n_diff_ids; i++)
		if (!oci_valid_digest(c->diff_ids[i]))
			return gw_err_set(err, EINVAL, "%s: diff_id '%.80s' is not sha256:<hex>",
					  what, c->diff_ids[i]);
	return 0;
}

int oci_parse_config(const char *buf, size_t len, struct oci_config *out, struct gw_err *err)
{
	cleanup_json json_object *o = NULL;
	memset(out, 0, sizeof(*out));
	int r = parse_json(buf, len, "image config", &o, err);
	if (r < 0)
		return r;
	if ((r = parse_config_obj(o, out, err)) < 0)
		oci_config_free(out);
	return r;
}

static void to_hex(const unsigned char *md, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

int oci_sha256_buf(const void *buf, size_t len, char hex[65], struct gw_err *err)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return gw_err_set(err, EIO, "sha256 failed");
	to_hex(md, hex);
	return 0;
}

int oci_sha256_fd(int fd, uint64_t *size, char hex[65], struct gw_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	unsigned int mdlen = 0;
	uint64_t total = 0;
	int r = 0;
	cleanup_free char *buf = malloc(1 << 16);
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return gw_err_set(err, ENOMEM, "sha256: out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 16);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = gw_err_sys(err, errno, "read");
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	if (r == 0 && (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32))
		r = gw_err_set(err, EIO, "sha256 failed");
	EVP_MD_CTX_free(ctx);
	if (r == 0) {
		to_hex(md, hex);
		if (size)
			*size = total;
	}
	return r;
}

int oci_normalize_ref(const char *ref, char **out, struct gw_err *err)
{
	static const char *const prefixes[] = { "docker.io/library/", "docker.io/" };
	*out = NULL;
	if (!ref || !*ref || strlen(ref) > 255)
		return gw_err_set(err, EINVAL, "invalid image reference '%.255s'", ref ? ref : "");
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(ref, prefixes[i], strlen(prefixes[i])) && ref[strlen(prefixes[i])]) {
			ref += strlen(prefixes[i]);
			break;
		}
	const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
	if (colon && slash && colon < slash)
		colon = NULL;
	size_t nlen = colon ? (size_t)(colon - ref) : strlen(ref);
	const char *tag = colon ? colon + 1 : "latest";
	int ok = nlen > 0 && *tag && strlen(tag) <= 128 && !strchr(ref, '@');
	for (size_t i = 0; ok && i < nlen; i++)
		ok = isalnum((unsigned char)ref[i]) || strchr("._-/:", ref[i]);
	ok = ok && isalnum((unsigned char)ref[0]) && ref[nlen - 1] != '/';
	for (const char *t = tag; ok && *t; t++)
		ok = isalnum((unsigned char)*t) || strchr("._-", *t);
	ok = ok && strstr(ref, "//") == NULL && strstr(ref, "..") == NULL;
	/* A ':' in the name can only be a registry port: "host:5000/...". */
	const char *port = memchr(ref, ':', nlen), *first_slash = memchr(ref, '/', nlen);
	if (ok && port) {
		ok = first_slash && port < first_slash && port + 1 < first_slash;
		for (const char *p = port + 1; ok && p < first_slash; p++)
			ok = isdigit((unsigned char)*p);
	}
	if (!ok)
		return gw_err_set(err, EINVAL, "invalid image reference '%s'", ref);
	*out = gw_strdup_printf("%.*s:%s", (int)nlen, ref, tag);
	return *out ? 0 : gw_err_set(err, ENOMEM, "out of memory");
}
