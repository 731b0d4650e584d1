#!/usr/bin/env bash
# Debian's podman (4.3, through conmon) with godwit-runtime as its OCI runtime
# (docs/oci-runtime.md): `podman run` returns the container's output and exit status and the
# process runs in a QEMU guest; run -d, ps, logs, exec, pause, unpause, stop, rm; podman's
# /etc/hosts reaches the guest; on podman's own network the VM has the container's address, and `-p HOSTPORT:80`
# reaches a server in the guest; run -it through a pty (the console socket); what the runtime
# cannot do yet (a host directory) fails with podman's exit 126 and the runtime's reason, and leaves nothing behind. Podman's
# storage is this test's own (--root/--runroot), so nothing of the host's podman is touched.
. tests/lib/e2e.sh
RT=$(dirname "$GODWIT")/godwit-runtime
W=$(mktemp -d /tmp/godwit-e2e-podman.XXXXXX)
P=(podman --root "$W/storage" --runroot "$W/run" --runtime "$RT" --events-backend file)
pm() { "${P[@]}" "$@"; }
cleanup() {
	pm rm -af >/dev/null 2>&1
	umount -R "$W/storage/overlay" 2>/dev/null
	rm -rf "$W"
	cleanup_roots
}
trap cleanup EXIT
out=$(pm load -i "$IMAGES/busybox-docker.tar" 2>&1); rc=$?
assert_eq "podman loads the test image" 0 "$rc"

out=$(pm run --rm --network none busybox sh -c \
	'echo hello from podman; grep -m1 "model name" /proc/cpuinfo; grep -c localhost /etc/hosts; exit 3' 2>&1); rc=$?
assert_eq "podman run returns the container's exit status" 3 "$rc"
assert_match "... and its output" "hello from podman" "$out"
assert_match "... from a QEMU guest" "model name.*QEMU" "$out"
assert_match "podman's /etc/hosts is the guest's" $'\n[1-9]' "$out"
assert_eq "--rm: nothing left in podman" "" "$(pm ps -aq)"

id=$(pm run -d --name pd1 --network none busybox sh -c \
	'i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.2; done' 2>&1); rc=$?
assert_eq "podman run -d exits 0" 0 "$rc"
for _ in $(seq 300); do pm logs pd1 2>/dev/null | grep -q "tick 3" && break; sleep 0.1; done
assert_match "podman logs shows its output" "tick 3" "$(pm logs pd1 2>&1)"
assert_match "podman ps shows it up" "Up .* pd1" "$(pm ps 2>&1)"
pid=$("$RT" state "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
assert_eq "the runtime's pid is the container's shim" godwit-shim "$(cat /proc/"$pid"/comm 2>/dev/null)"
assert_eq "conmon is the shim's parent" conmon "$(ps -o comm= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')" 2>/dev/null)"
out=$(pm exec pd1 sh -c 'echo in-exec $(hostname); exit 4' 2>&1); rc=$?
assert_eq "podman exec returns the process's status" 4 "$rc"
assert_match "... and its output" "in-exec" "$out"
out=$(printf 'one\ntwo\n' | pm exec -i pd1 sh -c 'cat; echo end' 2>&1); rc=$?
assert_eq "podman exec -i: our stdin reaches the process, EOF too" "0 one
two
end" "$rc $out"
out=$(python3 tests/lib/pty_drive.py size=22x77 expect='/ # ' send='until [ "$(stty size)" != "0 0" ]; do sleep 0.1; done; tty; stty size; echo mark-$((6*7))\r' \
	expect='mark-42' size=24x70 pause=1.5 send='stty size; exit 6\r' exit -- "${P[@]}" exec -it pd1 sh)
echo "$out" | sed 's/^/# /'
assert_match "podman exec -it: a terminal in the guest, of our size" \
	'/dev/pts/[0-9]+\\r\\n22 77' "$out"
assert_match "podman exec -it: a window size change reaches it" 'exit 6\\r\\n24 70' "$out"
assert_match "podman exec -it: its exit status" 'status: 6' "$out"
pm pause pd1 >/dev/null; rc=$?
assert_eq "podman pause exits 0" 0 "$rc"
assert_match "podman ps -a says paused" "Paused .* pd1" "$(pm ps -a 2>&1)"
pm unpause pd1 >/dev/null; rc=$?
assert_eq "podman unpause exits 0" 0 "$rc"
assert_match "podman ps says up again" "Up .* pd1" "$(pm ps 2>&1)"
pm stop -t 2 pd1 >/dev/null; rc=$?
assert_eq "podman stop exits 0" 0 "$rc"
assert_match "the container exited with SIGTERM's status" "Exited \(143\)" "$(pm ps -a 2>&1)"
pm rm pd1 >/dev/null; rc=$?
assert_eq "podman rm exits 0" 0 "$rc"
assert_eq "the runtime forgot it" "" "$("$RT" state "$id" 2>/dev/null)"

# podman's network: its namespace's interface is the VM's; a published port reaches the guest
PORT=$((18000 + $$ % 1000))
id=$(pm run -d --name web -p "$PORT:80" busybox sh -c \
	'mkdir -p /www; echo served-by-the-vm > /www/index.html; ip -4 addr show eth0; ip route; exec httpd -f -p 80 -h /www' 2>&1); rc=$?
assert_eq "podman run -d -p $PORT:80 exits 0" 0 "$rc"
ip=$(pm inspect web -f '{{.NetworkSettings.IPAddress}}' 2>/dev/null)
fetch() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())' "$1" 2>&1; }
for _ in $(seq 100); do pm logs web 2>/dev/null | grep -q "default via" && break; sleep 0.1; done
assert_match "the guest has podman's address for it ($ip)" "inet $ip/" "$(pm logs web 2>&1)"
assert_match "... and its default route" "default via [0-9.]+ dev eth0" "$(pm logs web 2>&1)"
out=""
for _ in $(seq 50); do out=$(fetch "http://127.0.0.1:$PORT/"); [ "$out" == served-by-the-vm ] && break; sleep 0.2; done
assert_eq "127.0.0.1:$PORT reaches the guest's server" served-by-the-vm "$out"
assert_eq "the container's address reaches it too" served-by-the-vm "$(fetch "http://$ip:80/")"
out=$("$GODWIT" --root /run/godwit-runtime migrate "$id" tcp:127.0.0.1:9 2>&1); rc=$?
assert_eq "godwit migrate of a container in podman's namespace: exit 125" 125 "$rc"
assert_match "... it cannot move" "lives in a network namespace of this host's .*cannot move" "$out"
out=$("$GODWIT" --root /run/godwit-runtime snapshot "$id" "$W/web.snap" 2>&1); rc=$?
assert_eq "... nor be snapshotted: exit 125" 125 "$rc"
assert_eq "... and no file is written" "" "$(ls "$W" | grep snap)"
assert_eq "it serves on" served-by-the-vm "$(fetch "http://127.0.0.1:$PORT/")"
pm rm -f web >/dev/null; rc=$?
assert_eq "podman rm -f of a running container exits 0" 0 "$rc"
assert_eq "... and it is gone" "" "$(pm ps -aq)"
assert_eq "its shim went with it" "" "$(pgrep -f "godwit-shim.*$id" || true)"

# what the runtime cannot do yet: podman's 126, the runtime's reason, nothing left
refused() { # refused WHAT REGEX RUN-ARGS...
	local what=$1 re=$2 out rc
	shift 2
	out=$(pm run --rm "$@" 2>&1); rc=$?
	assert_eq "$what: podman exits 126" 126 "$rc"
	assert_match "$what: the runtime says why" "$re" "$out"
	assert_eq "$what: nothing left in podman" "" "$(pm ps -aq)"
}
refused "a host directory" "a host directory cannot be shared with the container's VM" \
	--network none -v /tmp:/mnt busybox true

# -it: conmon gets the terminal's master over --console-socket; the guest has the tty
out=$(python3 tests/lib/pty_drive.py size=27x91 expect='/ # ' \
	send='until [ "$(stty size)" != "0 0" ]; do sleep 0.1; done; tty; stty size; grep -c QEMU /proc/cpuinfo; echo mark-$((6*7))\r' expect='mark-42' size=35x99 pause=1.5 \
	send='stty size; sleep 30; echo after\r' pause=2 send='\x03' expect='/ # ' \
	send='echo rc=$?; exit 4\r' exit -- "${P[@]}" run -it --rm --network none busybox sh)
echo "$out" | sed 's/^/# /'
assert_match "podman run -it: a terminal in the guest, of our size" \
	'/dev/pts/0\\r\\n27 91\\r\\n[1-9]' "$out"
assert_match "podman run -it: a window size change reaches it" 'stty size; sleep 30.*35 99' "$out"
assert_match "podman run -it: Ctrl-C interrupts the foreground process" 'rc=130' "$out"
assert_match "podman run -it: the exit status is the shell's" 'status: 4' "$out"
assert_eq "podman run -it --rm: nothing left in podman" "" "$(pm ps -aq)"

assert_eq "no shim of these containers left running" "" "$(pgrep -f "godwit-shim.*$id" || true)"
finish
