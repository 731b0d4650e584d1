#!/usr/bin/env bash
# Install what godwit needs to build, test and run on Debian 12 (as root). Idempotent.
set -euo pipefail
pkgs=(gcc make clang libc6-dev libarchive-dev libjson-c-dev libssl-dev libcmocka-dev
      qemu-system-x86 qemu-utils e2fsprogs busybox-static cpio gzip lz4 iproute2 iperf3
      python3 procps kmod ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
