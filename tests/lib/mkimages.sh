#!/usr/bin/env bash
# Build the test images, offline and deterministically, into OUTDIR:
#   busybox-docker.tar   docker-archive, busybox:latest (busybox-static, users root and app)
#   gwtest-oci/          OCI layout, gwtest:latest: 2 layers, the 2nd deletes a file with a
#   gwtest-oci.tar         whiteout and makes /data opaque; Entrypoint /bin/gwtest
#   bad-truncated.tar bad-digest.tar bad-traversal.tar bad-symlink.tar bad-hardlink.tar
# Usage: tests/lib/mkimages.sh OUTDIR   (needs gcc with static libc, python3, /bin/busybox)
set -euo pipefail
out=${1:?usage: mkimages.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
mkdir -p "$out"
gcc -static -O2 -Wall -Wextra -o "$out/gwtest" "$here/gwtest.c" "$here/gwsoak.c"
"$busybox" --list >"$out/busybox.list"
python3 - "$out" "$busybox" <<'PY'
import gzip, hashlib, io, json, os, shutil, sys, tarfile

out, busybox = sys.argv[1], sys.argv[2]
MTIME = 1700000000

def sha(b): return hashlib.sha256(b).hexdigest()

def tar(entries):
    """entries: (name, kind, payload, mode, uid) with kind f(ile) d(ir) l(symlink) h(ardlink)"""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload, mode, uid in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode, ti.uid, ti.gid = MTIME, mode, uid, uid
            ti.uname = ti.gname = ""
            if kind == "d": ti.type = tarfile.DIRTYPE
            elif kind == "l": ti.type, ti.linkname = tarfile.SYMTYPE, payload
            elif kind == "h": ti.type, ti.linkname = tarfile.LNKTYPE, payload
            else: ti.size = len(payload)
            t.addfile(ti, io.BytesIO(payload) if kind == "f" else None)
    return bio.getvalue()

def gz(b): return gzip.compress(b, mtime=0)

def f(name, data, mode=0o644, uid=0): return (name, "f", data, mode, uid)
def d(name, mode=0o755, uid=0): return (name, "d", None, mode, uid)
def l(name, target): return (name, "l", target, 0o777, 0)
def h(name, target): return (name, "h", target, 0o755, 0)

bb = open(busybox, "rb").read()
gwtest = open(os.path.join(out, "gwtest"), "rb").read()
applets = sorted(set(a for a in open(os.path.join(out, "busybox.list")).read().split()
                     if a and "/" not in a and a not in ("busybox", "sh")))
passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
group = b"root:x:0:\napp:x:1000:\n"
base = [d("bin"), d("dev"), d("etc"), d("home"), d("home/app", 0o755, 1000), d("proc"),
        d("root", 0o700), d("sys"), d("tmp", 0o1777), d("srv"),
        f("bin/busybox", bb, 0o755), h("bin/sh", "bin/busybox")]
base += [l("bin/" + a, "busybox") for a in applets]
base += [f("etc/passwd", passwd), f("etc/group", group),
         f("etc/hostname", b"godwit\n")]
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

def config(diff_ids, cfg):
    return json.dumps({"architecture": "amd64", "os": "linux", "config": cfg,
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                      sort_keys=True).encode()

def write(path, data):
    with open(path, "wb") as fh: fh.write(data)

def docker_archive(path, layers, cfg, tags, mangle=None):
    """layers: uncompressed layer tars; a docker save style archive."""
    conf = config(["sha256:" + sha(x) for x in layers], cfg)
    files = []
    paths = []
    for x in layers:
        p = sha(x) + "/layer.tar"
        files += [d(sha(x)), f(p, x)]
        paths.append(p)
    files.append(f(sha(conf) + ".json", conf))
    files.append(f("manifest.json", json.dumps(
        [{"Config": sha(conf) + ".json", "RepoTags": tags, "Layers": paths}]).encode()))
    data = tar(files)
    write(path, mangle(data) if mangle else data)

def oci_layout(layers, cfg, name, corrupt_layer=None):
    """layers: (tar bytes, gzip?) pairs; returns the layout as (relpath, bytes) pairs."""
    blobs, descs = {}, []
    for i, (x, compress) in enumerate(layers):
        blob = gz(x) if compress else x
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descs.append({"mediaType": mt, "digest": "sha256:" + sha(blob), "size": len(blob)})
        blobs[sha(blob)] = tar([f("broken", b"not the layer")]) if i == corrupt_layer else blob
    conf = config(["sha256:" + sha(x) for x, _ in layers], cfg)
    blobs[sha(conf)] = conf
    man = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": "sha256:" + sha(conf), "size": len(conf)},
                      "layers": descs}, sort_keys=True).encode()
    blobs[sha(man)] = man
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + sha(man), "size": len(man),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": "docker.io/library/" + name,
                        "org.opencontainers.image.ref.name": name.split(":")[1]}}]},
        sort_keys=True).encode()
    files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)]
    files += [("blobs/sha256/" + k, v) for k, v in sorted(blobs.items())]
    return files

def layout_tar(files):
    return tar([d("blobs"), d("blobs/sha256")] + [f(p, b) for p, b in files])

# busybox:latest, docker-archive
docker_archive(os.path.join(out, "busybox-docker.tar"), [tar(base)],
               {"Env": [PATH], "Cmd": ["sh"]}, ["busybox:latest"])

# gwtest:latest, OCI layout: layer 2 deletes srv/old.txt and makes data/ opaque
l1 = tar(base + [f("bin/gwtest", gwtest, 0o755), f("srv/old.txt", b"deleted by layer 2\n"),
                 d("data"), f("data/lower1", b"lower\n"), d("data/sub"),
                 f("data/sub/lower2", b"lower\n"), f("etc/motd", b"layer 1\n")])
l2 = tar([d("srv"), f("srv/.wh.old.txt", b""), f("srv/hello.txt", b"hello from layer 2\n"),
          d("data"), f("data/.wh..wh..opq", b""), f("data/upper", b"upper\n"),
          f("etc/motd", b"layer 2\n")])
gcfg = {"Env": ["GWTEST=1", "PATH=/bin:/usr/bin"], "WorkingDir": "/srv",
        "Entrypoint": ["/bin/gwtest"], "Cmd": ["env"]}
layout = oci_layout([(l1, True), (l2, False)], gcfg, "gwtest:latest")
root = os.path.join(out, "gwtest-oci")
shutil.rmtree(root, ignore_errors=True)
for p, b in layout:
    os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
    write(os.path.join(root, p), b)
write(os.path.join(out, "gwtest-oci.tar"), layout_tar(layout))

# Bad images: each must be refused with a clear error and leave nothing behind.
docker_archive(os.path.join(out, "bad-truncated.tar"), [tar(base)],
               {"Cmd": ["sh"]}, ["bad:truncated"], mangle=lambda b: b[: len(b) // 2])
small = tar([d("etc"), f("etc/hostname", b"bad\n")])
write(os.path.join(out, "bad-digest.tar"),
      layout_tar(oci_layout([(small, True)], {"Cmd": ["sh"]}, "bad:digest", corrupt_layer=0)))
docker_archive(os.path.join(out, "bad-traversal.tar"),
               [tar([d("etc"), f("etc/ok", b"ok\n"), f("../../../tmp/godwit-escaped", b"x\n")])],
               {"Cmd": ["sh"]}, ["bad:traversal"])
docker_archive(os.path.join(out, "bad-symlink.tar"),
               [tar([l("escape", "/tmp"), f("escape/godwit-escaped", b"x\n")])],
               {"Cmd": ["sh"]}, ["bad:symlink"])
docker_archive(os.path.join(out, "bad-hardlink.tar"),
               [tar([d("etc"), h("etc/shadow-copy", "../../../etc/shadow")])],
               {"Cmd": ["sh"]}, ["bad:hardlink"])
PY
rm -f "$out/busybox.list"
