#!/usr/bin/env bash
# Interactive containers, driven through a real pseudo-terminal (tests/lib/pty_drive.py) as a
# user at a terminal: run -it (the guest's tty, its window size and its changes, Ctrl-C
# reaching the foreground process, the exit status), run -i with piped input (large input
# arrives whole), run -dit then attach and the detach keys (the container keeps running),
# exec -it and exec -i, and the errors.
. tests/lib/e2e.sh
ROOT=$(new_root)
gw load -i "$IMAGES/busybox-docker.tar" >/dev/null
PTY="python3 tests/lib/pty_drive.py"
P='/ # '	# busybox sh's prompt for root in /

out=$($PTY size=30x100 expect="$P" send='stty size; tty; echo T=$TERM\r' expect="$P" \
	size=40x120 pause=1 send='stty size\r' expect="$P" \
	send='sleep 30; echo after\r' pause=2 send='\x03' expect="$P" \
	send='echo rc=$?; exit 7\r' exit -- "$GODWIT" --root "$ROOT" run -it --rm -m 256 busybox sh)
echo "$out" | sed 's/^/# /'
assert_match "run -it: the process has a terminal in the guest, of our size" \
	"30 100\\\\r\\\\n/dev/pts/0\\\\r\\\\nT=xterm" "$out"
assert_match "run -it: a window size change reaches it (SIGWINCH, stty size)" \
	"stty size\\\\r\\\\n40 120" "$out"
assert_match "run -it: Ctrl-C interrupts the foreground process (SIGINT, status 130)" \
	"rc=130" "$out"
assert_eq "run -it: ... the sleep did not run its 30 s, nor what came after it" "" \
	"$(echo "$out" | grep -F '\nafter'; echo "$out" | grep -E '^seconds: ([3-9][0-9]|[0-9]{3})')"
assert_match "run -it: the exit status is the process's" "status: 7" "$out"

out=$(printf 'first\nsecond\n' | gw run -i --rm -m 256 busybox sh -c \
	'read a; read b; read c || echo "$b $a EOF"; exit 3'); rc=$?
assert_eq "run -i: piped input reaches the process, EOF too; its status is returned" \
	"3 second first EOF" "$rc $out"
head -c 3000000 /dev/urandom >"$ROOT/blob"
want=$(md5sum <"$ROOT/blob" | cut -d' ' -f1)
out=$(gw run -i --rm -m 256 busybox md5sum <"$ROOT/blob"); rc=$?
assert_eq "run -i: 3 MB of input arrive whole (md5sum in the guest)" "0 $want  -" "$rc $out"
out=$(echo hi | gw run --rm -m 256 busybox cat); rc=$?
assert_eq "run without -i: the process reads nothing (EOF at once)" "0 " "$rc $out"

gw run -dit --name t1 -m 256 busybox sh >/dev/null
assert_eq "inspect: Config.Tty and OpenStdin of run -dit" "True True" \
	"$(gw inspect t1 | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]["Config"]; print(c["Tty"], c["OpenStdin"])')"
out=$($PTY size=25x90 send='\r' expect="$P" send='X=42; echo set$X\r' expect="set42" \
	send='\x10\x11' exit -- "$GODWIT" --root "$ROOT" attach t1)
echo "$out" | sed 's/^/# /'
assert_match "attach: the shell of run -dit answers" "set42" "$out"
assert_match "attach: ctrl-p ctrl-q detach, attach exits 0" "status: 0" "$out"
assert_eq "... and the container runs on" "running" "$(gw ps | awk '$1 == "t1" { print $3 }')"
out=$($PTY size=25x90 send='\r' expect="$P" send='echo again$X; stty size\r' \
	expect="$P" send='\x01' exit -- "$GODWIT" --root "$ROOT" attach --detach-keys ctrl-a t1)
assert_match "attach again: the same shell (its variable), our size" "again42\\\\r\\\\n25 90" "$out"
assert_match "attach --detach-keys ctrl-a: detaches" "status: 0" "$out"

out=$($PTY size=20x70 expect="$P" send='tty; stty size; exit 5\r' exit -- \
	"$GODWIT" --root "$ROOT" exec -it t1 sh)
assert_match "exec -it: a second terminal, of our size" "/dev/pts/1\\\\r\\\\n20 70" "$out"
assert_match "exec -it: its exit status" "status: 5" "$out"
out=$(printf 'one\ntwo\n' | gw exec -i t1 sh -c 'cat; echo done'); rc=$?
assert_eq "exec -i: piped input and EOF" "0 one
two
done" "$rc $out"
out=$(gw exec t1 tty); rc=$?
assert_eq "exec without -t: no terminal" "1 not a tty" "$rc $out"

out=$(echo one | gw run -i --name t3 -m 256 busybox sh -c 'read x; echo got $x; exit 2'); rc=$?
assert_eq "run -i (a container to start again)" "2 got one" "$rc $out"
out=$(echo two | gw start -ai t3); rc=$?
assert_eq "start -ai: the new run reads our stdin; its output and status" "2 got two" "$rc $out"
gw rm t3 >/dev/null
out=$(gw run -it --detach-keys ctrl-xx busybox true 2>&1); rc=$?
assert_eq "a bad --detach-keys: exit 125" 125 "$rc"
assert_match "... that says why" "invalid --detach-keys" "$out"
out=$(gw attach nosuch 2>&1); rc=$?
assert_eq "attach to no such container: exit 125" 125 "$rc"
gw run -d --name t2 -m 256 busybox sh -c 'sleep 6; exit 4' >/dev/null
out=$(echo x | gw attach t2 2>&1); rc=$?
assert_eq "attach to a container run without -i: its output and exit status, stdin unsent" \
	"4 " "$rc $out"
gw rm -f t1 t2 >/dev/null
assert_eq "no QEMU or shim left running" "" "$(leftovers "$ROOT")"
finish
