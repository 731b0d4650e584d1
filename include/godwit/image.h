/* The image subsystem: loading docker-archive and OCI layout images (verified by digest,
 * layers applied with whiteouts and path safety), one read-only ext4 base disk per image id,
 * and the image store under ROOT/images (see docs/images.md). Used by the CLI (load, images,
 * rmi) and by run/shim through gw_image_resolve(). Nothing here needs QEMU. */
#ifndef GODWIT_IMAGE_H
#define GODWIT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/err.h"

/* Bounds on everything that comes from an image. */
#define OCI_JSON_MAX (4u << 20)			/* manifest, index, config JSON */
#define OCI_LAYERS_MAX 128			/* layers per image */
#define OCI_MANIFESTS_MAX 64			/* manifests per index / docker manifest.json */
#define OCI_TAGS_MAX 64				/* tags per image */
#define OCI_INDEX_DEPTH_MAX 4			/* nested image indexes */
#define LAYER_ENTRIES_MAX 1000000		/* entries per layer */
#define LAYER_PATH_MAX 4096			/* bytes of one entry path */
#define IMAGE_UNPACKED_MAX (16ull << 30)	/* total uncompressed bytes of all layers */
#define IMAGE_INPUT_MAX (32ull << 30)		/* bytes unpacked from an outer image tar */

struct gw_image {
	char id[72];		/* "sha256:<64 hex>" */
	char *dir;		/* ROOT/images/<hex> */
	char *base_disk;	/* ROOT/images/<hex>/base.ext4, read-only base for overlays */
	char **entrypoint;	/* NULL-terminated, may be NULL */
	char **cmd;		/* NULL-terminated, may be NULL */
	char **env;		/* NULL-terminated "K=V", may be NULL */
	char *workdir;		/* may be NULL */
	char *user;		/* may be NULL */
	uint64_t size;		/* bytes of the unpacked root filesystem */
};

/* ROOT/images/<hex>/base.ext4 for id "sha256:<hex>" (NULL for another id or no memory). */
char *gw_image_base_disk(const char *root, const char *id);
/* ref: "name:tag", "name" (= name:latest), full "sha256:<hex>", or an unambiguous id prefix
 * (>= 4 hex chars, with or without "sha256:"). -ENOENT with "unknown image: REF" if absent. */
int gw_image_resolve(const char *root, const char *ref, struct gw_image *out, struct gw_err *err);
void gw_image_free(struct gw_image *img);

/* ---- Pure parsers (oci.c). Every input is untrusted; each has a fuzz target. ---- */

struct oci_descriptor {
	char media_type[128];
	char digest[72];	/* "sha256:<64 lowercase hex>" (only sha256 is accepted) */
	int64_t size;
	char *ref_name;		/* from annotations (io.containerd.image.name or
				 * org.opencontainers.image.ref.name), may be NULL */
	int foreign_platform;	/* platform given and not linux/amd64 */
};

/* An OCI image index (index.json or a nested index blob): its manifests. */
struct oci_index {
	struct oci_descriptor *manifests;
	size_t n_manifests;
};

/* An OCI image manifest: the config and the layers, in application order. */
struct oci_manifest {
	struct oci_descriptor config;
	struct oci_descriptor *layers;
	size_t n_layers;
};

/* One entry of a docker-archive manifest.json. Paths are relative to the archive root,
 * already checked to contain no ".." and not to be absolute. */
struct oci_docker_image {
	char *config;
	char **repo_tags;	/* NULL-terminated, may be empty */
	char **layers;		/* n_layers paths */
	size_t n_layers;
};
struct oci_docker_manifest {
	struct oci_docker_image *images;
	size_t n_images;
};

/* The parts of an image config godwit uses. */
struct oci_config {
	char **entrypoint, **cmd, **env;	/* NULL-terminated or NULL */
	char *workdir, *user;
	char **diff_ids;			/* "sha256:<hex>", n_diff_ids of them */
	size_t n_diff_ids;
};

/* Parse buf[0..len) (need not be NUL-terminated; at most OCI_JSON_MAX). On error *out is
 * left empty (nothing to free) and err says what is wrong. */
int oci_parse_index(const char *buf, size_t len, struct oci_index *out, struct gw_err *err);
int oci_parse_manifest(const char *buf, size_t len, struct oci_manifest *out, struct gw_err *err);
int oci_parse_docker_manifest(const char *buf, size_t len, struct oci_docker_manifest *out,
			      struct gw_err *err);
int oci_parse_config(const char *buf, size_t len, struct oci_config *out, struct gw_err *err);
void oci_index_free(struct oci_index *x);
void oci_manifest_free(struct oci_manifest *m);
void oci_docker_manifest_free(struct oci_docker_manifest *m);
void oci_config_free(struct oci_config *c);
void oci_strv_free(char **v);

/* 1 if d is "sha256:" + 64 lowercase hex digits. */
int oci_valid_digest(const char *d);

/* sha256 of a buffer / of a file's contents, as 64 lowercase hex digits + NUL. */
int oci_sha256_buf(const void *buf, size_t len, char hex[65], struct gw_err *err);
int oci_sha256_fd(int fd, uint64_t *size, char hex[65], struct gw_err *err);

/* Split and check an image reference "name[:tag]" (tag defaults to "latest"; a leading
 * "docker.io/library/" or "docker.io/" is dropped). Returns "name:tag" malloc'd in *out, or
 * -EINVAL with a message. */
int oci_normalize_ref(const char *ref, char **out, struct gw_err *err);

/* ---- Layers (layers.c) ---- */

struct layer_stats {
	uint64_t bytes;		/* running total of regular file bytes, checked against max */
	uint64_t max_bytes;	/* 0 = IMAGE_UNPACKED_MAX */
	unsigned skipped;	/* device nodes and sockets skipped (never created on the host) */
};

/* Apply the layer tar (plain or gzip/zstd/xz compressed) at fd to the directory tree rootfs,
 * as OCI/docker do: `.wh.NAME` deletes NAME of lower layers, `.wh..wh..opq` empties its
 * directory of lower-layer content. Rejects with -EPERM/-EINVAL and a clear message: ".."
 * components, entries that walk through a symlink, hard links whose target is outside or
 * walks through a symlink, paths longer than LAYER_PATH_MAX, more than LAYER_ENTRIES_MAX
 * entries, and stats->bytes beyond the bound. Leading "/" and "./" are stripped (an absolute
 * path means the rootfs). Devices and sockets are skipped and counted; fifos are created.
 * If diff_id is non-NULL it is "sha256:<hex>" and must be the sha256 of the uncompressed tar.
 * Not thread-safe: changes the working directory while it runs (restored before returning).
 * fd is read from its current position; it is not closed. */
int layer_apply(int fd, const char *rootfs, const char *diff_id, struct layer_stats *stats,
		struct gw_err *err);

/* Unpack a plain (outer) tar at fd into dir with the same path checks but no whiteouts,
 * at most max_bytes of file data. */
int layer_unpack_plain(int fd, const char *dir, uint64_t max_bytes, struct gw_err *err);

/* sha256 of the uncompressed stream of a (possibly compressed) tar at fd. */
int layer_diff_id(int fd, char hex[65], struct gw_err *err);

/* ---- Base disks (basedisk.c) ---- */

/* Bytes a directory tree occupies (allocated blocks, plus one 4 KiB block per inode). */
int basedisk_tree_size(const char *dir, uint64_t *out, struct gw_err *err);

/* The virtual size of the base disk for a tree of `size` bytes:
 * max(256 MiB, 2 * size + 32 MiB), rounded up to 1 MiB. */
uint64_t basedisk_virtual_size(uint64_t size);

/* Make an ext4 image file at path from the tree at rootfs with mkfs.ext4 -d. */
int basedisk_build(const char *rootfs, const char *path, uint64_t virtual_size,
		   struct gw_err *err);

/* Place small host files into the ext4 image at path (made by basedisk_build, not in use):
 * each f[i].src, a regular file of at most BASEDISK_FILE_MAX bytes, becomes f[i].dst,
 * replacing what is there, parents made as needed; each checked afterwards. Paths are absolute
 * and of letters, digits and ._+- only (godwit-runtime: podman's /etc/hosts and friends). */
#define BASEDISK_FILES_MAX 16
#define BASEDISK_FILE_MAX (1 << 20)
struct basedisk_file {
	const char *src, *dst;
};
int basedisk_add_files(const char *path, const struct basedisk_file *f, size_t n,
		       struct gw_err *err);

/* ---- The store (store.c) and loading (load.c) ---- */

struct gw_image_loaded {
	char id[72];
	char **tags;		/* NULL-terminated "name:tag", may be empty */
	int existed;		/* the image was already in the store */
};

/* Load every image of the docker-archive or OCI layout (directory or tar, maybe compressed)
 * at path into ROOT/images. *out gets an array of n results (free with
 * gw_image_loaded_free). Nothing half-written is left on failure. */
int gw_image_load(const char *root, const char *path, struct gw_image_loaded **out, size_t *n,
		  struct gw_err *err);
void gw_image_loaded_free(struct gw_image_loaded *l, size_t n);

struct gw_image_info {
	char id[72];
	char *repo, *tag;	/* NULL for an untagged image */
	uint64_t size;
	int64_t loaded_ns;	/* wall-clock time of the load */
};

/* One row per (image, tag), untagged images once; newest first. */
int gw_image_list(const char *root, struct gw_image_info **out, size_t *n, struct gw_err *err);
void gw_image_info_free(struct gw_image_info *l, size_t n);

/* rmi: a "name:tag" ref removes that tag and, when no tag is left, the image; an id (or
 * prefix) removes the image and all its tags. Refuses with -EBUSY if a container in
 * ROOT/containers uses the image. print(line, arg) is called for each "Untagged: X" /
 * "Deleted: sha256:..." line (may be NULL). */
int gw_image_remove(const char *root, const char *ref, void (*print)(const char *, void *),
		    void *arg, struct gw_err *err);

/* Store internals shared by load.c and store.c. */
/* Record a new image: move the finished dir tmpdir to ROOT/images/<hex> (if no image with
 * that id exists yet) and point each tag at it. */
int store_commit(const char *root, const char *id, const char *tmpdir, char *const *tags,
		 int *existed, struct gw_err *err);
/* 1 if ROOT/images/<hex of id> holds a complete image. */
int store_has_image(const char *root, const char *id);

#endif
