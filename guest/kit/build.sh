#!/usr/bin/env bash
# Build the guest kit: Debian's cloud kernel (taken from its package with `apt-get download`,
# never installed into the host), the virtio modules the guest needs, and an initramfs whose
# /init is godwit-agent. Idempotent: each output is rebuilt only when older than its inputs.
# Env: BUILD (default build), GW_INITRD_COMPRESS (lz4 | gzip, default lz4: boots faster on TCG).
# Usage: guest/kit/build.sh [--kernel-version]
set -euo pipefail

BUILD=${BUILD:-build}
OUT=$BUILD/guest
AGENT=$BUILD/godwit-agent
COMPRESS=${GW_INITRD_COMPRESS:-lz4}
# Load order matters (no modules.dep in the package); the agent loads them in this order.
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
	virtio_console failover net_failover virtio_net virtio_balloon)

log() { echo "guest-kit: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$OUT"

# 1. The kernel package: the one linux-image-cloud-amd64 depends on; cached as a .deb in $OUT.
deb=$(ls -t "$OUT"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update?)"
	tmp=$(mktemp -d)
	chmod 0777 "$tmp"	# apt-get download runs as _apt when it can
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg"
	(cd "$tmp" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
	mv "$tmp"/*.deb "$OUT"/
	deb=$(ls -t "$OUT"/linux-image-*-cloud-amd64_*.deb | head -n 1)
fi

# 2. Extract (dpkg-deb -x into our own tree, never into /).
tree=$OUT/kernel-tree
if [ ! -f "$tree/.stamp" ] || [ "$deb" -nt "$tree/.stamp" ]; then
	rm -rf "$tree"
	mkdir -p "$tree"
	dpkg-deb -x "$deb" "$tree"
	touch "$tree/.stamp"
fi
vmlinuz_src=$(ls "$tree"/boot/vmlinuz-* | head -n 1)
kver=${vmlinuz_src##*/vmlinuz-}
if [ "${1:-}" = "--kernel-version" ]; then
	echo "$kver"
	exit 0
fi
if [ ! -f "$OUT/vmlinuz" ] || [ "$vmlinuz_src" -nt "$OUT/vmlinuz" ]; then
	cp "$vmlinuz_src" "$OUT/vmlinuz"
fi
echo "$kver" >"$OUT/kernel-version"

# 3. Uncompressed ELF vmlinux for PVH boot: the bzImage payload is one LZ4 (legacy) stream;
# find its magic (02 21 4c 18) and decompress from there. Trailing bytes after the stream make
# lz4 complain, so judge success by the result being an ELF file.
if [ ! -f "$OUT/vmlinux" ] || [ "$OUT/vmlinuz" -nt "$OUT/vmlinux" ]; then
	off=$(grep -obUaP '\x02\x21\x4c\x18' "$OUT/vmlinuz" | head -n 1 | cut -d: -f1 || true)
	if [ -n "$off" ]; then
		tail -c +$((off + 1)) "$OUT/vmlinuz" | lz4 -dc >"$OUT/vmlinux.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$OUT/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = "7f454c46" ]; then
			mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
		else
			rm -f "$OUT/vmlinux.tmp"
			log "warning: could not extract vmlinux (bzImage only)"
		fi
	else
		log "warning: no LZ4 payload in vmlinuz (bzImage only)"
	fi
fi

# 4. The initramfs: /init = godwit-agent, the modules, empty mount points.
[ -x "$AGENT" ] || die "$AGENT missing (run make $AGENT)"
initrd=$OUT/initrd.img
newest=$AGENT
[ "$0" -nt "$newest" ] && newest=$0
[ "$tree/.stamp" -nt "$newest" ] && newest=$tree/.stamp
if [ -f "$initrd" ] && [ "$initrd" -nt "$newest" ] && [ -f "$OUT/initrd.$COMPRESS" ]; then
	log "up to date: $OUT/vmlinuz $initrd (kernel $kver)"
	exit 0
fi
root=$OUT/initrd-root
rm -rf "$root"
mkdir -p "$root"/{dev,proc,sys,newroot,run,tmp,lib/modules}
cp "$AGENT" "$root/init"
chmod 0755 "$root/init"
for m in "${MODULES[@]}"; do
	ko=$(find "$tree/lib/modules/$kver" -name "$m.ko" -print -quit)
	if [ -z "$ko" ]; then
		xz=$(find "$tree/lib/modules/$kver" -name "$m.ko.xz" -print -quit)
		if [ -n "$xz" ]; then
			xz -dc "$xz" >"$root/lib/modules/$m.ko"
			continue
		fi
		log "note: module $m not in package (built in?)"
		continue
	fi
	cp "$ko" "$root/lib/modules/"
done
# /dev/console lets the kernel give /init its stdio before devtmpfs is mounted.
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$root/dev/console" c 5 1
fi
case $COMPRESS in
lz4) zcmd=(lz4 -l -9 -q -c) ;;	# the kernel wants the legacy LZ4 format
gzip) zcmd=(gzip -9 -n -c) ;;
none) zcmd=(cat) ;;
*) die "unknown GW_INITRD_COMPRESS=$COMPRESS" ;;
esac
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio -o -0 -H newc --owner=0:0 --quiet) | "${zcmd[@]}" >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
rm -f "$OUT"/initrd.{lz4,gzip,none}
touch "$OUT/initrd.$COMPRESS"
log "built $OUT/vmlinuz $initrd ($COMPRESS, $(stat -c %s "$initrd") bytes, kernel $kver)"
