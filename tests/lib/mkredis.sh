#!/usr/bin/env bash
# The Redis image of tests/e2e/62-redis-move.sh: Debian bookworm (minbase) with the
# redis-server package, made by debootstrap from the archive apt uses, written as a
# docker-archive "redis:7" whose entrypoint serves on every address without persistence.
# Made once, cached in OUTDIR (its build takes a few minutes: the packages are downloaded).
# Usage: tests/lib/mkredis.sh OUTDIR   (root; needs debootstrap, scripts/deps.sh installs it)
set -euo pipefail
out=${1:?usage: mkredis.sh OUTDIR}
[ -s "$out/redis-docker.tar" ] && exit 0
mkdir -p "$out"
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
	grep -v security | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
tmp=$(mktemp -d /tmp/godwit-redis.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if ! debootstrap --variant=minbase --include=redis-server bookworm "$tmp/root" "$mirror" \
	>"$tmp/log" 2>&1; then
	tail -n 20 "$tmp/log" >&2
	echo "mkredis: debootstrap from $mirror failed" >&2
	exit 1
fi
r=$tmp/root
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc \
	"$r"/usr/share/man "$r"/usr/share/locale "$r"/usr/share/info
# the devices and the kernel's file systems are the guest's own
tar -C "$r" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
	-cf "$tmp/layer.tar" .
python3 - "$tmp/layer.tar" "$out/redis-docker.tar.tmp" <<'PY'
import hashlib, io, json, sys, tarfile
layer, dest = sys.argv[1], sys.argv[2]
h = hashlib.sha256()
with open(layer, "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
diff = h.hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Entrypoint": ["/usr/bin/redis-server"],
                             "Cmd": ["--protected-mode", "no", "--save", "", "--appendonly", "no"],
                             "ExposedPorts": {"6379/tcp": {}}},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}},
                 sort_keys=True).encode()
cid = hashlib.sha256(cfg).hexdigest()
man = json.dumps([{"Config": cid + ".json", "RepoTags": ["redis:7"],
                   "Layers": [diff + "/layer.tar"]}]).encode()
with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime = len(data), 1700000000
        t.addfile(ti, io.BytesIO(data))
    ti = tarfile.TarInfo(diff)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
    t.addfile(ti)
    t.add(layer, arcname=diff + "/layer.tar")
    add(cid + ".json", cfg)
    add("manifest.json", man)
PY
mv "$out/redis-docker.tar.tmp" "$out/redis-docker.tar"
