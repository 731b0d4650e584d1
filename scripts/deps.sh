#!/usr/bin/env bash
# Install what godwit needs to build, test and run on Debian 12 (as root). Idempotent.
# QEMU comes from Debian's bookworm-backports suite (10.0): godwit needs QEMU >= 9.0 (TCG
# migrations before 9.0 lose guest writes; 9.1 removed block migration, which godwit no
# longer uses). docs/qemu.md says why.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi
bpo=/etc/apt/sources.list.d/godwit-bookworm-backports.sources
updated=0
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	cat >"$bpo" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	apt-get update -qq
	updated=1
fi
pkgs=(gcc make clang libc6-dev libarchive-dev libjson-c-dev libssl-dev libcmocka-dev libmnl-dev
      nftables e2fsprogs busybox-static cpio gzip lz4 iproute2 iperf3 python3 procps kmod
      ca-certificates debootstrap openssl tcpdump podman containerd)
bpo_pkgs=(qemu-system-x86 qemu-utils seabios)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The backports QEMU: installed, and its version from bookworm-backports (10.x).
qemu_ok=1
for p in "${bpo_pkgs[@]}"; do
	v=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
	case "$v" in
	"install ok installed "*bpo12*) ;;
	*) qemu_ok=0 ;;
	esac
done
if [ ${#missing[@]} -gt 0 ] || [ "$qemu_ok" -eq 0 ]; then
	[ "$updated" -eq 1 ] || apt-get update -qq
	if [ ${#missing[@]} -gt 0 ]; then
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	if [ "$qemu_ok" -eq 0 ]; then
		apt-get install -y -qq --no-install-recommends -t bookworm-backports \
			"${bpo_pkgs[@]}" >/dev/null
	fi
fi
# The user QEMU runs as (docs/security.md): no home, no shell, no password; in the kvm group
# where the host has one.
if ! getent passwd godwit-qemu >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group godwit-qemu
fi
if getent group kvm >/dev/null; then
	usermod -a -G kvm godwit-qemu
fi
