#!/usr/bin/env bash
# Debian 12's own QEMU 7.2, unpacked (never installed) into DIR, with DIR/qemu: a wrapper that
# runs it with its own modules and firmware, for tests that move a container from an older
# QEMU to the installed one (tests/e2e/38-qemu-versions.sh). Needs apt-get (root) and the
# bookworm suite; the packages are fetched once. Usage: tests/lib/oldqemu.sh DIR
set -euo pipefail
dir=${1:?usage: oldqemu.sh DIR}
[ -x "$dir/qemu" ] && "$dir/qemu" --version >/dev/null 2>&1 && exit 0
rm -rf "$dir"
mkdir -p "$dir/debs" "$dir/root"
chmod 777 "$dir/debs" # apt-get download drops root to _apt where it can
(cd "$dir/debs" && apt-get download -qq qemu-system-x86/bookworm qemu-system-common/bookworm \
	qemu-system-data/bookworm 2>/dev/null)
for f in "$dir"/debs/*.deb; do dpkg -x "$f" "$dir/root"; done
# the firmware links point at ../seabios: the installed seabios serves both QEMUs
ln -sfn /usr/share/seabios "$dir/root/usr/share/seabios"
cat >"$dir/qemu" <<WRAP
#!/bin/sh
QEMU_MODULE_DIR=$dir/root/usr/lib/x86_64-linux-gnu/qemu exec $dir/root/usr/bin/qemu-system-x86_64 -L $dir/root/usr/share/qemu "\$@"
WRAP
chmod +x "$dir/qemu"
"$dir/qemu" --version | head -n 1
