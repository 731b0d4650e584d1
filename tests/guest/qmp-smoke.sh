#!/usr/bin/env bash
# Real-QEMU check of src/hv/: boots a tiny busybox initrd with the command line from
# hv_build_argv(), talks QMP (greeting, capabilities, query-version, query-status,
# query-qmp-schema, cont), then live-migrates it to a second QEMU started with -incoming defer.
# usage: tests/guest/qmp-smoke.sh [KERNEL]   (default: build/guest/vmlinuz, else /tmp/k/x/boot/vmlinuz-*)
set -euo pipefail
cd "$(dirname "$0")/../.."
kernel=${1:-}
[ -z "$kernel" ] && [ -f build/guest/vmlinuz ] && kernel=build/guest/vmlinuz
[ -z "$kernel" ] && kernel=$(ls /tmp/k/x/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] || { echo "qmp-smoke: no kernel" >&2; exit 1; }
work=$(mktemp -d /tmp/godwit-qmp-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A busybox /init that prints a marker, the CPU features that matter, then ticks.
mkdir -p "$work/ird/bin"
cp "$(command -v busybox)" "$work/ird/bin/busybox"
cat >"$work/ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev && /bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
echo "GODWIT-INIT up $(/bin/busybox cat /proc/uptime)" > /dev/ttyS0
/bin/busybox grep -o -w 'sse4_2\|popcnt\|cx16\|la57' /proc/cpuinfo | /bin/busybox sort -u | /bin/busybox tr '\n' ' ' > /dev/ttyS0
echo > /dev/ttyS0
i=0; while true; do i=$((i+1)); echo "tick $i" > /dev/ttyS0; /bin/busybox sleep 0.2; done
INIT
chmod +x "$work/ird/init"
(cd "$work/ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.img")
qemu-img create -q -f qcow2 "$work/disk.qcow2" 64M

gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE -o "$work/qmp-smoke" \
	tests/guest/qmp-smoke.c src/hv/qmp.c src/hv/qemu.c src/common/util.c src/common/err.c \
	-ljson-c -w
flock /tmp/godwit-vm.lock timeout 180 "$work/qmp-smoke" "$kernel" "$work/initrd.img" "$work" \
	"$work/disk.qcow2"
echo "--- source console (tail)"; grep -A1 GODWIT-INIT "$work/a.console"; tail -n 2 "$work/a.console"
echo "--- destination console (tail)"; tail -n 3 "$work/b.console"
