# Shared helpers for the benchmarks (sourced by bench/*.sh): paths, the VM lock, the bare-QEMU
# anchor (same machine, CPU model, accelerator options and kernel as godwit's src/hv/qemu.c),
# the two "hosts" (network namespaces joined by a veth pair, or loopback), medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
G=$PWD/$BUILD/godwit
BT=$PWD/bench/bt.py
KIT=$PWD/$BUILD/guest
BENCH_RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-$PWD/$BUILD/bench}
LOCK=/tmp/godwit-vm.lock
mkdir -p "$OUT"

# The anchor's QEMU options: the values of src/hv/qemu.c (the machine type a new container
# gets from this QEMU's version, TCG tb-size, HV_TCG_CPU, HV_CMDLINE_BASE). check_same_qemu
# compares them with a running godwit QEMU.
Q_MACHINE=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([0-9]*\)\.\([0-9]*\).*/pc-i440fx-\1.\2/p')
Q_ACCEL=tcg,tb-size=256
Q_CPU=qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16
Q_APPEND="console=ttyS0 quiet panic=-1 oops=panic 8250.nr_uarts=1 i8042.noaux i8042.nomux \
i8042.nopnp i8042.dumbkbd no_timer_check cryptomgr.notests pci=lastbus=0 nowatchdog \
init_on_alloc=0"
q_base() { # MEM_MIB: the common part of every anchor command line
	echo qemu-system-x86_64 -name anchor,debug-threads=on -machine $Q_MACHINE -accel $Q_ACCEL -cpu $Q_CPU -m "${1}M" -smp 1 \
		-nodefaults -no-user-config -nographic -no-reboot -kernel "$KIT/vmlinuz" \
		-initrd "$OUT/anchor.img"
}

# check_same_qemu PID: warn when godwit's QEMU no longer matches the anchor's options
check_same_qemu() {
	local cl
	cl=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 0
	for o in "-machine $Q_MACHINE" "-accel $Q_ACCEL" "-cpu $Q_CPU" "-kernel $KIT/vmlinuz" \
		"-append $Q_APPEND"; do
		[[ "$cl" == *"$o"* ]] || echo "WARNING: godwit's QEMU lacks '$o': anchor differs" >&2
	done
}

accel() { "$G" info | awk '/^accelerator:/ {print $2}'; }

# vm_job TIMEOUT CMD...: one VM job under the shared VM lock (unless the caller holds it)
vm_job() {
	local t=$1
	shift
	if [ -n "${GODWIT_VM_LOCK_HELD:-}" ]; then
		timeout "$t" "$@"
	else
		flock "$LOCK" timeout "$t" "$@"
	fi
}

# The anchor guest: the kernel of the guest kit + an initramfs with bench/anchor-init.c as
# /init, gwtest and the kit's virtio modules (loaded only by BENCH=net), lz4-compressed like
# the kit's.
anchor_build() {
	local d="$OUT/anchor-root"
	[ "$OUT/anchor.img" -nt bench/anchor-init.c ] && [ "$OUT/anchor.img" -nt tests/lib/gwtest.c ] &&
		[ "$OUT/anchor.img" -nt tests/lib/gwsoak.c ] && [ "$OUT/anchor.img" -nt "$KIT/initrd.img" ] &&
		return 0
	rm -rf "$d"
	mkdir -p "$d/dev" "$d/proc" "$d/lib/modules"
	cp "$KIT"/initrd-root/lib/modules/*.ko "$d/lib/modules/"
	gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$d/init" bench/anchor-init.c
	gcc -static -O2 -Wall -Wextra -o "$d/gwtest" tests/lib/gwtest.c tests/lib/gwsoak.c
	(cd "$d" && find . -print0 | cpio -o -0 -H newc --owner=0:0 --quiet) |
		lz4 -l -9 -q -c >"$OUT/anchor.img"
}

# Test images (busybox, gwtest) as built by tests/lib/mkimages.sh
IMGS=${BENCH_IMAGES:-$PWD/$BUILD/test-images}
images_build() {
	local t=$IMGS/gwtest-oci.tar
	[ -f "$IMGS/busybox-docker.tar" ] && [ "$t" -nt tests/lib/gwtest.c ] &&
		[ "$t" -nt tests/lib/gwsoak.c ] && [ "$t" -nt tests/lib/mkimages.sh ] && return 0
	tests/lib/mkimages.sh "$IMGS" >/dev/null
}

# Two hosts. BENCH_NET=netns (default when `ip netns` works): namespaces joined by a veth pair,
# like tests/lib/netns.sh; BENCH_NET=loopback: both on 127.0.0.1. in_src/in_dst CMD... run a
# command on a host; SRC_IP/DST_IP are their addresses.
NS_SRC=gwb-src-$$
NS_DST=gwb-dst-$$
net_setup() {
	BENCH_NET=${BENCH_NET:-netns}
	if [ "$BENCH_NET" = netns ] && ip netns add "$NS_SRC" 2>/dev/null; then
		ip netns add "$NS_DST"
		ip link add gwbs$$ type veth peer name gwbd$$
		ip link set gwbs$$ netns "$NS_SRC"
		ip link set gwbd$$ netns "$NS_DST"
		ip -n "$NS_SRC" addr add 10.78.0.1/24 dev gwbs$$
		ip -n "$NS_DST" addr add 10.78.0.2/24 dev gwbd$$
		for n in "$NS_SRC" "$NS_DST"; do ip -n "$n" link set lo up; done
		ip -n "$NS_SRC" link set gwbs$$ up
		ip -n "$NS_DST" link set gwbd$$ up
		SRC_IP=10.78.0.1 DST_IP=10.78.0.2
	else
		BENCH_NET=loopback SRC_IP=127.0.0.1 DST_IP=127.0.0.1
	fi
}
net_teardown() {
	[ "${BENCH_NET:-}" = netns ] || return 0
	ip netns del "$NS_SRC" 2>/dev/null || true
	ip netns del "$NS_DST" 2>/dev/null || true
}
in_src() { if [ "$BENCH_NET" = netns ]; then ip netns exec "$NS_SRC" "$@"; else "$@"; fi; }
in_dst() { if [ "$BENCH_NET" = netns ]; then ip netns exec "$NS_DST" "$@"; else "$@"; fi; }

# two_roots TAG [DIR]: the two hosts' roots RA, RB and a private work directory WD in DIR
# (default /tmp: the anchor's sockets and logs); roots_cleanup removes their containers, kills
# what runs from WD (anchor QEMUs and readers of a run killed by its timeout), tears the
# hosts' namespaces down (if net_setup made them) and removes the three
two_roots() {
	RA=$(mktemp -d "/tmp/godwit-bench-${1}A.XXXXXX")
	RB=$(mktemp -d "/tmp/godwit-bench-${1}B.XXXXXX")
	WD=$(mktemp -d "${2:-/tmp}/godwit-bench-$1.XXXXXX")
}
roots_cleanup() {
	for r in "$RA" "$RB"; do
		for n in $("$G" --root "$r" ps -aq 2>/dev/null); do
			"$G" --root "$r" rm -f "$n" >/dev/null 2>&1 || true
		done
	done
	for p in $(pgrep -f -- "$WD/" || true); do kill -9 "$p" 2>/dev/null || true; done
	net_teardown
	rm -rf "$RA" "$RB" "$WD"
}

# med KEY FILE: median of a JSON field over the runs in FILE
med() { python3 "$BT" median "$1" "$2"; }
# count FILE EXPR: how many runs satisfy a python expression over the run's dict r
count() {
	python3 - "$1" "$2" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("%d/%d" % (sum(1 for r in rs if eval(sys.argv[2], {}, {"r": r})), len(rs)))
PY
}
