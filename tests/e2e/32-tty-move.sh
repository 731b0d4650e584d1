#!/usr/bin/env bash
# A terminal session crosses a live migration: the tty and the shell on it live in the guest,
# so they move with it. A shell of run -dit is given state through a real pty
# (tests/lib/pty_drive.py); a session stays attached on the source through the move and is
# told where the container went; on the destination attach finds the same shell (its
# variable, its background job, the same /dev/pts/0) and the new window size reaches it.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts
PTY="python3 tests/lib/pty_drive.py"
P='/ # '

h1 run -dit --name tt -m 256 busybox sh >/dev/null
# the beat is written whole (a rename), so a read never finds it truncated for the next one
out=$($PTY size=30x100 send='\r' expect="$P" \
	send='X=42; (while :; do date +%s > /tmp/b.new; mv /tmp/b.new /tmp/beat; sleep 0.2; done) & echo job$X\r' \
	expect="job42" send='\x10\x11' exit -- ip netns exec "$NS1" "$GODWIT" --root "$R1" attach tt)
assert_match "source: the shell took its variable and a background job, detached" \
	"status: 0" "$out"
# a second session stays attached through the move
$PTY size=30x100 send='\r' expect="$P" exit -- \
	ip netns exec "$NS1" "$GODWIT" --root "$R1" attach tt >"$R1/during.out" 2>&1 &
during=$!
sleep 2
out=$(migrate_to 1 2 tt); rc=$?
echo "# $out"
assert_eq "migrate exits 0" 0 "$rc"
wait "$during"
echo "# attached during the move: $(tr '\n' ' ' <"$R1/during.out")"
assert_match "the session attached during the move ends, 125, saying where it went" \
	"migrated away.*attach to it there.*status: 125" "$(tr '\n' ' ' <"$R1/during.out")"
out=$($PTY size=33x111 send='\r' expect="$P" \
	send='echo X=$X; tty; stty size; jobs | grep -c Running; a=$(cat /tmp/beat); sleep 1.5; echo B=$(( $(cat /tmp/beat) - a ))\r' \
	expect="B=" expect="$P" send='exit 9\r' exit -- \
	ip netns exec "$NS2" "$GODWIT" --root "$R2" attach tt)
echo "$out" | sed 's/^/# /'
assert_match "destination: the same shell (its variable), on the same tty" \
	'X=42\\r\\n/dev/pts/0' "$out"
assert_match "destination: our window size reached it" '33 111' "$out"
assert_match "destination: its background job runs on (1 job; its beat moved on in 1.5 s)" \
	'\\r\\n1\\r\\nB=[12]\\r' "$out"
assert_match "destination: the shell's exit status ends the attach" "status: 9" "$out"
out=$(h2 wait tt); rc=$?
assert_eq "destination: the container stopped with that status (wait)" "0 9" "$rc $out"
h1 rm -f tt >/dev/null; h2 rm -f tt >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
