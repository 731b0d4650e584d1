#!/usr/bin/env bash
# The migration soak (issue 11): one container holding everything a move must carry - a
# memory checker (64 MiB rewritten every 500 ms), a heartbeat, UNIX sockets (a socketpair and
# a listener with a connected client; a listener bound by a relative path), a pty session,
# SysV shared memory, a semaphore and a message queue, a ptraced child, children of uids 1000
# and 1001, an established TCP connection inside the guest, a tmpfs it mounted, a named volume it
# writes (run -v soakvol:/vol, docs/volumes.md), open devices
# (what CRIU cannot move) (`gwtest soak`, tests/lib/gwsoak.c) - moved 20 times between
# two hosts, h1→h2→h1..., two moves with the default policy, two with --postcopy, and so on.
# After each move (tests/lib/soak.sh): migrate exits 0 (a --postcopy move of a quiet moment
# may finish in pre-copy; some of them must go through post-copy), the source is a tombstone
# with no shim or QEMU, the destination runs it, the heartbeat runs on without gap or repeat, `gwtest soakcheck` finds every resource intact and
# still at work, no FAIL or CORRUPT line in its output, and neither console shows
# BUG|Oops|panic|corruption. The loop stops at the first move that fails, saying why.
# bench/soak.sh runs the same loop for 100 moves.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
. tests/lib/soak.sh
two_hosts

MOVES=${SOAK_MOVES:-20}
soak_start
assert_eq "soak: started, every resource checked on h1" "" "$SOAK_WHY"
t0=$(date +%s)
done_moves=0
if [ -z "$SOAK_WHY" ]; then
	for ((i = 1; i <= MOVES; i++)); do
		soak_move "$i"
		rc=$?
		echo "# $SOAK_LINE"
		assert_eq "soak move $i: migrated, heartbeat continuous, every resource held, consoles clean" \
			"" "$SOAK_WHY"
		[ "$rc" -eq 0 ] || break
		done_moves=$i
	done
fi
echo "# soak: $done_moves of $MOVES moves in $(( $(date +%s) - t0 )) s, $SOAK_SWITCHED through post-copy"
assert_eq "soak: all $MOVES moves done" "$MOVES" "$done_moves"
assert_true "soak: some of the --postcopy moves went through post-copy ($SOAK_SWITCHED)" \
	test "$SOAK_SWITCHED" -ge 1
# and it still answers at the end: the container is where the last move left it
assert_eq "soak: exec works at the end" "alive" "$(hgwt 60 "$SOAK_AT" exec "$SOAK" gwtest echo alive 2>&1)"
hgw "$SOAK_AT" rm -f "$SOAK" >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
