#!/usr/bin/env bash
# Boot benchmark (issue 2): ms from `godwit run busybox echo ready` to the line "ready" on the
# CLI's stdout, beside bare QEMU booting the same kernel with the anchor initramfs (its /init
# prints "ready" on ttyS0 = -serial stdio and powers off), same machine, CPU model, TCG options
# and memory. Both timed from process start to the line. Plus the shim's VmRSS while a
# container runs. BENCH_RUNS runs each (default 3), alternated; prints a markdown table. A
# second anchor row, labelled, boots the kernel's default command line (only console=ttyS0
# quiet panic=-1, what the anchor booted before issue 17): what godwit's probe-disabling
# flags save.
source "$(dirname "$0")/lib.sh"
MEM=${BENCH_BOOT_MEM:-512} # godwit's default guest memory

anchor_build
images_build
R=$(mktemp -d /tmp/godwit-bench-boot.XXXXXX)
cleanup() {
	for n in $("$G" --root "$R" ps -q 2>/dev/null); do "$G" --root "$R" rm -f "$n" >/dev/null 2>&1; done
	rm -rf "$R"
}
trap cleanup EXIT
"$G" --root "$R" load -i "$IMGS/busybox-docker.tar" >/dev/null

GW=$OUT/boot-godwit.txt QM=$OUT/boot-qemu.txt QD=$OUT/boot-qemu-default-cmdline.txt
: >"$GW"
: >"$QM"
: >"$QD"
for i in $(seq "$BENCH_RUNS"); do
	vm_job 120 python3 "$BT" firstline ready 100 "$G" --root "$R" run --rm -m "${MEM}M" \
		--name boot$i busybox echo ready >>"$GW" || echo "godwit run $i: no ready line" >&2
	"$G" --root "$R" rm -f boot$i >/dev/null 2>&1 || true
	# shellcheck disable=SC2046
	vm_job 120 python3 "$BT" firstline ready 100 $(q_base "$MEM") -serial stdio \
		-append "$Q_APPEND BENCH=boot" >>"$QM" || echo "qemu run $i: no ready line" >&2
	# shellcheck disable=SC2046
	vm_job 120 python3 "$BT" firstline ready 100 $(q_base "$MEM") -serial stdio \
		-append "console=ttyS0 quiet panic=-1 BENCH=boot" >>"$QD" ||
		echo "qemu (default command line) run $i: no ready line" >&2
done

# The shim's resident memory while a container runs (and QEMU's, for scale)
rss_job() {
	"$G" --root "$R" run -d -m "${MEM}M" --name rss busybox sleep 60 >/dev/null
	local shim qemu
	shim=$(pgrep -f -- "--root $R .*__shim" | head -1)
	qemu=$(pgrep -f -- "qemu-system.*$R/containers/rss/" | head -1)
	check_same_qemu "$qemu"
	sleep 2
	echo "$(awk '/VmRSS/ {print $2}' "/proc/$shim/status") $(awk '/VmRSS/ {print $2}' "/proc/$qemu/status")"
	"$G" --root "$R" rm -f rss >/dev/null
}
export -f rss_job check_same_qemu
rss=$(MEM=$MEM R=$R G=$G KIT=$KIT Q_MACHINE=$Q_MACHINE Q_ACCEL=$Q_ACCEL Q_CPU=$Q_CPU \
	vm_job 120 bash -c rss_job) || rss="? ?"

stats() { python3 -c 'import statistics,sys; v=[float(x) for x in open(sys.argv[1]).read().split()]; print("%.0f %.0f %.0f %d" % (statistics.median(v), min(v), max(v), len(v)) if v else "n/a n/a n/a 0")' "$1"; }
read -r gmed gmin gmax gn <<<"$(stats "$GW")"
read -r qmed qmin qmax qn <<<"$(stats "$QM")"
read -r dmed dmin dmax dn <<<"$(stats "$QD")"
over=$(python3 -c "print('%+.1f%%' % (($gmed/$qmed-1)*100))" 2>/dev/null || echo n/a)
read -r shim_kb qemu_kb <<<"$rss"
[[ "$shim_kb" =~ ^[0-9]+$ && "$qemu_kb" =~ ^[0-9]+$ ]] || { echo "shim RSS not measured: [$rss]" >&2; shim_kb=0 qemu_kb=0; }
echo
echo "### Boot to first output line ($(accel), ${MEM} MiB guest, median of $gn/$qn runs)"
echo
echo "| | median ms | min | max | runs |"
echo "|---|---|---|---|---|"
echo "| bare QEMU, anchor /init prints \"ready\" | $qmed | $qmin | $qmax | $qn |"
echo "| bare QEMU, the kernel's default command line (the old anchor: a different kernel command line) | $dmed | $dmin | $dmax | $dn |"
echo "| godwit run busybox echo ready | $gmed | $gmin | $gmax | $gn |"
echo "| godwit over bare QEMU (target <= +15%) | $over | | | |"
echo
echo "Shim VmRSS while a container runs: $((shim_kb / 1024)).$(((shim_kb % 1024) * 10 / 1024)) MiB" \
	"($shim_kb kB; target < 5 MiB); its QEMU: $((qemu_kb / 1024)) MiB"
