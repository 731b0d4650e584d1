/* `godwit load`: reads a docker-archive or an OCI image layout (a directory, or a tar of either,
 * maybe compressed), verifies every blob against its digest, applies the layers and builds the
 * image's base disk in ROOT/images/tmp/, then hands the finished directory to the store.
 * Files named by manifests are opened with RESOLVE_BENEATH: they cannot leave the archive. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <json-c/json.h>

#include "godwit/image.h"
#include "godwit/util.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

struct loader {
	const char *root;
	const char *work;		/* ROOT/images/tmp/load.XXXXXX */
	int src;			/* the archive's root directory */
	struct gw_image_loaded *res;
	size_t n_res;
};

static int open_beneath(int dirfd, const char *path, struct gw_err *err)
{
	/* O_NONBLOCK: a FIFO in the archive must not hang the open (fstat refuses it next) */
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) /* old kernel: no symlinks at all then */
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == EXDEV ? gw_err_set(err, EPERM, "%.200s: points outside the archive",
						   path)
				      : gw_err_sys(err, errno, "open %.200s in the archive", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gw_err_set(err, EINVAL, "%.200s: not a regular file", path);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Read a JSON file of the archive; if digest is given check it (and size when >= 0). */
static int read_json(struct loader *l, const char *path, const char *digest, int64_t size,
		     char **out, size_t *len, struct gw_err *err)
{
	cleanup_close int fd = open_beneath(l->src, path, err);
	if (fd < 0)
		return fd;
	cleanup_free char *buf = malloc(OCI_JSON_MAX + 1);
	if (!buf)
		return gw_err_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, OCI_JSON_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return gw_err_sys(err, errno, "read %.200s", path);
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > OCI_JSON_MAX)
			return gw_err_set(err, EFBIG, "%.200s: larger than %u bytes", path,
					  OCI_JSON_MAX);
	}
	buf[n] = '\0';
	if (digest) {
		char hex[65];
		int r = oci_sha256_buf(buf, n, hex, err);
		if (r < 0)
			return r;
		if (strcmp(hex, digest + 7))
			return gw_err_set(err, EBADMSG, "blob %s: digest mismatch (content is "
					  "sha256:%s)", digest, hex);
		if (size >= 0 && (uint64_t)size != n)
			return gw_err_set(err, EBADMSG, "blob %s: size %zu, descriptor says %lld",
					  digest, n, (long long)size);
	}
	*out = steal_ptr(buf);
	*len = n;
	return 0;
}

static int add_result(struct loader *l, const char *id, char **tags, int existed,
		      struct gw_err *err)
{
	struct gw_image_loaded *nr = realloc(l->res, (l->n_res + 1) * sizeof(*nr));
	if (!nr)
		return gw_err_set(err, ENOMEM, "out of memory");
	l->res = nr;
	snprintf(nr[l->n_res].id, sizeof(nr->id), "%s", id);
	nr[l->n_res].tags = tags;
	nr[l->n_res].existed = existed;
	l->n_res++;
	return 0;
}

static int apply_layers(struct loader *l, const char *rootfs, char **layers,
			const struct oci_descriptor *descs, size_t n_layers, char **diff_ids,
			struct layer_stats *stats, struct gw_err *err)
{
	for (size_t i = 0; i < n_layers; i++) {
		const char *what = descs ? descs[i].digest : layers[i];
		cleanup_close int fd = open_beneath(l->src, layers[i], err);
		int r = fd < 0 ? fd : 0;
		if (r == 0 && descs) {
			uint64_t sz;
			char hex[65];
			r = oci_sha256_fd(fd, &sz, hex, err);
			if (r == 0 && (strcmp(hex, descs[i].digest + 7) ||
				       sz != (uint64_t)descs[i].size))
				r = gw_err_set(err, EBADMSG, "digest mismatch: content is sha256:%s, "
					       "%llu bytes (descriptor: %lld bytes)", hex,
					       (unsigned long long)sz, (long long)descs[i].size);
			if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
				r = gw_err_sys(err, errno, "seek");
		}
		if (r == 0)
			r = layer_apply(fd, rootfs, diff_ids[i], stats, err);
		if (r < 0)
			return gw_err_prefix(err, "layer %zu (%.80s)", i + 1, what);
	}
	return 0;
}

/* Unpack, make the base disk and the metadata in work/img-<hex>, then commit it. */
static int build_fresh(struct loader *l, const char *id, const char *config, size_t config_len,
		       char **layers, const struct oci_descriptor *descs, size_t n_layers,
		       const struct oci_config *cfg, char **tags, int *existed, struct gw_err *err)
{
	const char *hex = id + 7;
	cleanup_free char *dir = gw_strdup_printf("%s/img-%s", l->work, hex);
	cleanup_free char *rootfs = gw_strdup_printf("%s/img-%s/rootfs", l->work, hex);
	cleanup_free char *disk = gw_strdup_printf("%s/img-%s/base.ext4", l->work, hex);
	cleanup_free char *cfgp = gw_strdup_printf("%s/img-%s/config.json", l->work, hex);
	cleanup_free char *meta = gw_strdup_printf("%s/img-%s/meta.json", l->work, hex);
	if (!dir || !rootfs || !disk || !cfgp || !meta)
		return gw_err_set(err, ENOMEM, "out of memory");
	struct layer_stats stats = { 0 };
	uint64_t size;
	int r;
	if ((r = gw_mkdir_p(rootfs, 0755, err)) < 0 ||
	    (r = apply_layers(l, rootfs, layers, descs, n_layers, cfg->diff_ids, &stats,
			      err)) < 0 ||
	    (r = basedisk_tree_size(rootfs, &size, err)) < 0 ||
	    (r = basedisk_build(rootfs, disk, basedisk_virtual_size(size), err)) < 0 ||
	    (r = gw_write_file(cfgp, config, config_len, 0644, err)) < 0)
		return r;
	cleanup_free char *m = gw_strdup_printf(
		"{\"id\": \"%s\", \"size\": %llu, \"loaded_ns\": %lld, \"layers\": %zu, "
		"\"skipped_devices\": %u}\n", id, (unsigned long long)size,
		(long long)gw_now_real_ns(), n_layers, stats.skipped);
	if (!m)
		return gw_err_set(err, ENOMEM, "out of memory");
	if ((r = gw_write_file(meta, m, strlen(m), 0644, err)) < 0 ||
	    (r = gw_rm_rf(rootfs, err)) < 0)
		return r;
	return store_commit(l->root, id, dir, tags, existed, err);
}

/* Build one image from its verified config and its layers (paths inside the archive, with
 * blob digests/sizes when the format has them) and tag it; tags are consumed. */
static int build_image(struct loader *l, const char *config, size_t config_len,
		       char **layers, const struct oci_descriptor *descs, size_t n_layers,
		       char **tags, struct gw_err *err)
{
	char hex[65], id[72];
	struct oci_config cfg;
	int existed = 1;
	int r = oci_sha256_buf(config, config_len, hex, err);
	if (r < 0 || (r = oci_parse_config(config, config_len, &cfg, err)) < 0) {
		oci_strv_free(tags);
		return r;
	}
	snprintf(id, sizeof(id), "sha256:%s", hex);
	if (cfg.n_diff_ids != n_layers)
		r = gw_err_set(err, EINVAL, "image %.19s: %zu layers but the config lists %zu "
			       "diff_ids", id, n_layers, cfg.n_diff_ids);
	else if (store_has_image(l->root, id))
		r = store_commit(l->root, id, NULL, tags, &existed, err);
	else
		r = build_fresh(l, id, config, config_len, layers, descs, n_layers, &cfg, tags,
				&existed, err);
	oci_config_free(&cfg);
	if (r == 0 && (r = add_result(l, id, tags, existed, err)) == 0)
		return 0;
	oci_strv_free(tags);
	return r;
}

/* docker save: manifest.json lists config files named by their digest and layer tars whose
 * uncompressed sha256 must match the config's diff_ids. */
static int load_docker(struct loader *l, struct gw_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	struct oci_docker_manifest m;
	int r = read_json(l, "manifest.json", NULL, -1, &buf, &len, err);
	if (r < 0 || (r = oci_parse_docker_manifest(buf, len, &m, err)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < m.n_images; i++) {
		struct oci_docker_image *im = &m.images[i];
		const char *base = strrchr(im->config, '/');
		base = base ? base + 1 : im->config;
		char want[72];
		snprintf(want, sizeof(want), "sha256:%.64s", base);
		if (strlen(base) < 64 || (base[64] && strcmp(base + 64, ".json")) ||
		    !oci_valid_digest(want)) {
			r = gw_err_set(err, EINVAL, "manifest.json: config '%.200s' is not named by "
				       "its sha256 digest", im->config);
			break;
		}
		cleanup_free char *cfg = NULL;
		size_t cfg_len;
		if ((r = read_json(l, im->config, want, -1, &cfg, &cfg_len, err)) < 0)
			break;
		char **tags = calloc(OCI_TAGS_MAX + 1, sizeof(*tags));
		if (!tags) {
			r = gw_err_set(err, ENOMEM, "out of memory");
			break;
		}
		for (size_t t = 0; r == 0 && im->repo_tags && im->repo_tags[t]; t++)
			r = oci_normalize_ref(im->repo_tags[t], &tags[t], err);
		if (r < 0) {
			oci_strv_free(tags);
			break;
		}
		r = build_image(l, cfg, cfg_len, im->layers, NULL, im->n_layers, tags, err);
	}
	oci_docker_manifest_free(&m);
	return r;
}

static int blob_path(const char *digest, char out[96])
{
	return snprintf(out, 96, "blobs/sha256/%.64s", digest + 7);
}

static int load_oci_manifest(struct loader *l, const struct oci_descriptor *d,
			     const char *ref, struct gw_err *err)
{
	char path[96], cpath[96];
	cleanup_free char *buf = NULL, *cfg = NULL;
	size_t len, cfg_len;
	struct oci_manifest m;
	blob_path(d->digest, path);
	int r = read_json(l, path, d->digest, d->size, &buf, &len, err);
	if (r < 0 || (r = oci_parse_manifest(buf, len, &m, err)) < 0)
		return r;
	if (strcmp(m.config.media_type, MT_OCI_CONFIG) &&
	    strcmp(m.config.media_type, MT_DOCKER_CONFIG)) {
		r = gw_err_set(err, EINVAL, "manifest %.19s: config media type '%s' is not an "
			       "image config", d->digest, m.config.media_type);
		goto out;
	}
	blob_path(m.config.digest, cpath);
	if ((r = read_json(l, cpath, m.config.digest, m.config.size, &cfg, &cfg_len, err)) < 0)
		goto out;
	char **layers = calloc(m.n_layers + 1, sizeof(*layers));
	char **tags = calloc(2, sizeof(*tags));
	for (size_t i = 0; layers && i < m.n_layers; i++) {
		if (!(layers[i] = malloc(96)))
			break;
		blob_path(m.layers[i].digest, layers[i]);
	}
	if (!layers || !tags || (m.n_layers && !layers[m.n_layers - 1])) {
		oci_strv_free(layers);
		free(tags);
		r = gw_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (ref && (r = oci_normalize_ref(ref, &tags[0], err)) < 0)
		oci_strv_free(tags);
	else
		r = build_image(l, cfg, cfg_len, layers, m.layers, m.n_layers, tags, err);
	oci_strv_free(layers);
out:
	oci_manifest_free(&m);
	return r;
}

/* Walk an index: nested indexes (bounded depth) and manifests for linux/amd64. */
static int load_oci_index(struct loader *l, const char *buf, size_t len, const char *ref,
			  int depth, struct gw_err *err)
{
	struct oci_index x;
	if (depth > OCI_INDEX_DEPTH_MAX)
		return gw_err_set(err, ELOOP, "image indexes nested deeper than %d",
				  OCI_INDEX_DEPTH_MAX);
	int r = oci_parse_index(buf, len, &x, err);
	for (size_t i = 0; r == 0 && i < x.n_manifests; i++) {
		const struct oci_descriptor *d = &x.manifests[i];
		const char *name = d->ref_name ? d->ref_name : ref;
		if (d->foreign_platform)
			continue;
		if (!strcmp(d->media_type, MT_OCI_INDEX) || !strcmp(d->media_type, MT_DOCKER_LIST)) {
			char path[96];
			cleanup_free char *sub = NULL;
			size_t sub_len;
			blob_path(d->digest, path);
			r = read_json(l, path, d->digest, d->size, &sub, &sub_len, err);
			if (r == 0)
				r = load_oci_index(l, sub, sub_len, name, depth + 1, err);
		} else if (!strcmp(d->media_type, MT_OCI_MANIFEST) ||
			   !strcmp(d->media_type, MT_DOCKER_MANIFEST)) {
			if (l->n_res >= OCI_MANIFESTS_MAX)
				r = gw_err_set(err, E2BIG, "more than %d images", OCI_MANIFESTS_MAX);
			else
				r = load_oci_manifest(l, d, name, err);
		} else {
			r = gw_err_set(err, EINVAL, "index entry %.19s: unsupported media type "
				       "'%.100s'", d->digest, d->media_type);
		}
	}
	oci_index_free(&x);
	return r;
}

static int load_oci(struct loader *l, struct gw_err *err)
{
	cleanup_free char *lay = NULL, *idx = NULL;
	size_t len;
	int r = read_json(l, "oci-layout", NULL, -1, &lay, &len, err);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(lay), *v;
	int ok = o && json_object_object_get_ex(o, "imageLayoutVersion", &v) &&
		 gw_json_streq(v, "1.0.0");
	json_object_put(o);
	if (!ok)
		return gw_err_set(err, EINVAL, "oci-layout: imageLayoutVersion is not 1.0.0");
	if ((r = read_json(l, "index.json", NULL, -1, &idx, &len, err)) < 0)
		return r;
	if ((r = load_oci_index(l, idx, len, NULL, 0, err)) == 0 && l->n_res == 0)
		r = gw_err_set(err, ENOENT, "index.json: no image for linux/amd64");
	return r;
}

int gw_image_load(const char *root, const char *path, struct gw_image_loaded **out, size_t *n,
		  struct gw_err *err)
{
	struct loader l = { .root = root, .src = -1 };
	struct stat st;
	cleanup_free char *tmp = gw_strdup_printf("%s/images/tmp", root);
	cleanup_free char *work = gw_strdup_printf("%s/images/tmp/load.XXXXXX", root);
	cleanup_free char *srcdir = NULL;
	*out = NULL;
	*n = 0;
	if (!tmp || !work)
		return gw_err_set(err, ENOMEM, "out of memory");
	if (stat(path, &st) < 0)
		return gw_err_sys(err, errno, "%s", path);
	int r = gw_mkdir_p(tmp, 0700, err);
	if (r < 0)
		return r;
	if (!mkdtemp(work))
		return gw_err_sys(err, errno, "mkdtemp in %s", tmp);
	l.work = work;
	if (S_ISDIR(st.st_mode)) {
		srcdir = strdup(path);
	} else {
		cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		srcdir = gw_strdup_printf("%s/src", work);
		if (fd < 0)
			r = gw_err_sys(err, errno, "open %s", path);
		else if (!srcdir)
			r = gw_err_set(err, ENOMEM, "out of memory");
		else if ((r = gw_mkdir_p(srcdir, 0700, err)) == 0 &&
			 (r = layer_unpack_plain(fd, srcdir, IMAGE_INPUT_MAX, err)) < 0)
			gw_err_prefix(err, "%s", path);
	}
	if (r == 0 && !srcdir)
		r = gw_err_set(err, ENOMEM, "out of memory");
	if (r == 0 && (l.src = open(srcdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = gw_err_sys(err, errno, "open %s", srcdir);
	if (r == 0) {
		if (faccessat(l.src, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			r = load_docker(&l, err);
		else if (faccessat(l.src, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			r = load_oci(&l, err);
		else
			r = gw_err_set(err, EINVAL, "%s: neither a docker-archive (manifest.json) "
				       "nor an OCI layout (index.json)", path);
	}
	if (l.src >= 0)
		close(l.src);
	struct gw_err ignored;
	gw_rm_rf(work, &ignored);
	if (r < 0) {
		gw_image_loaded_free(l.res, l.n_res);
		return r;
	}
	*out = l.res;
	*n = l.n_res;
	return 0;
}

void gw_image_loaded_free(struct gw_image_loaded *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		oci_strv_free(l[i].tags);
	free(l);
}
