#!/usr/bin/env bash
# Debian's containerd (1.6) driving godwit-runtime through its runc shim
# (io.containerd.runc.v2 with the runc binary replaced: ctr's --runc-binary, the BinaryName of
# the runc options; docs/oci-runtime.md): ctr run returns the output and exit status of a
# process that runs in a QEMU guest; run -d, task exec, ps, pause/resume, kill, delete; run -t
# under a pty. containerd is this test's own (its config, root, state and socket in a
# temporary directory, its own namespace), so nothing of a host's containerd is touched.
. tests/lib/e2e.sh
RT=$(realpath "$(dirname "$GODWIT")/godwit-runtime")
W=$(mktemp -d /tmp/godwit-e2e-ctd.XXXXXX)
NS=godwit-e2e-$$
cat >"$W/config.toml" <<TOML
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/ctd.sock"
TOML
containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
CTD=$!
C=(ctr -a "$W/ctd.sock" -n "$NS")
cleanup() {
	for t in $("${C[@]}" task ls -q 2>/dev/null); do "${C[@]}" task kill -s KILL "$t"; done
	sleep 1
	for t in $("${C[@]}" task ls -q 2>/dev/null); do "${C[@]}" task delete -f "$t"; done
	for c in $("${C[@]}" container ls -q 2>/dev/null); do "${C[@]}" container delete "$c"; done
	kill "$CTD" 2>/dev/null
	wait "$CTD" 2>/dev/null
	grep -o "$W/root/[^ ]*" /proc/mounts | sort -r | xargs -r umount 2>/dev/null
	rm -rf "$W" "/run/containerd/runc/$NS" "/run/containerd/io.containerd.runtime.v2.task/$NS"
	cleanup_roots
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$W/ctd.sock" ] && "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
out=$("${C[@]}" image import "$IMAGES/busybox-docker.tar" 2>&1); rc=$?
assert_eq "containerd is up and imports the test image" 0 "$rc"
IMG=docker.io/library/busybox:latest

out=$("${C[@]}" run --rm --runc-binary "$RT" "$IMG" t1 sh -c \
	'echo hello from $(hostname); grep -m1 "model name" /proc/cpuinfo; exit 3' 2>&1); rc=$?
assert_eq "ctr run returns the process's exit status" 3 "$rc"
assert_match "... and its output" "hello from t1" "$out"
assert_match "... from a QEMU guest" "model name.*QEMU" "$out"
assert_eq "--rm: no container left" "" "$("${C[@]}" container ls -q)"

"${C[@]}" run -d --runc-binary "$RT" "$IMG" t2 sh -c \
	'trap "exit 5" TERM; while :; do sleep 0.2; done' >/dev/null; rc=$?
assert_eq "ctr run -d exits 0" 0 "$rc"
assert_match "task ls: running" "^t2 +[0-9]+ +RUNNING" "$("${C[@]}" task ls | grep '^t2')"
for _ in $(seq 100); do
	out=$("${C[@]}" task exec --exec-id e1 t2 sh -c 'echo in-exec; exit 4' 2>&1); rc=$?
	[ "$rc" = 4 ] && break; sleep 0.2 # the VM boots (a start at once is held until then)
done
assert_eq "task exec: the process's status and output" "4 in-exec" "$rc $out"
pid=$("${C[@]}" task ls | awk '$1 == "t2" { print $2 }')
assert_eq "the task's pid is the container's shim" godwit-shim "$(cat "/proc/$pid/comm" 2>/dev/null)"
"${C[@]}" task pause t2
assert_match "task pause: paused" "^t2 +[0-9]+ +PAUSED" "$("${C[@]}" task ls | grep '^t2')"
"${C[@]}" task resume t2
assert_match "task resume: running" "^t2 +[0-9]+ +RUNNING" "$("${C[@]}" task ls | grep '^t2')"
"${C[@]}" task kill t2
for _ in $(seq 100); do "${C[@]}" task ls | grep -q '^t2 .*STOPPED' && break; sleep 0.1; done
assert_match "task kill (SIGTERM): stopped" "^t2 +[0-9]+ +STOPPED" "$("${C[@]}" task ls | grep '^t2')"
out=$("${C[@]}" task delete t2 2>&1)
assert_match "task delete: the process's status (its TERM trap's 5)" "exit code 5" \
	"$out $(grep 'task t2 exit' "$W/containerd.log")"
"${C[@]}" container delete t2

out=$(python3 tests/lib/pty_drive.py size=28x95 expect='/ # ' send='until [ "$(stty size)" != "0 0" ]; do sleep 0.1; done; tty; stty size; echo mark-$((6*7))\r' \
	expect='mark-42' size=30x99 pause=1.5 send='stty size; exit 6\r' exit -- \
	"${C[@]}" run -t --rm --runc-binary "$RT" "$IMG" t3 sh)
echo "$out" | sed 's/^/# /'
assert_match "ctr run -t: a terminal in the guest, of our size" '/dev/pts/0(\\r)+\\n28 95' "$out"
assert_match "ctr run -t: a window size change reaches it" 'exit 6(\\r)+\\n30 99' "$out"
assert_match "ctr run -t: the exit status is the shell's" 'status: 6' "$out"
assert_eq "no godwit shim of these tasks left" "" "$(pgrep -f "godwit-shim.*/run/containerd/runc/$NS" || true)"
finish
