#!/usr/bin/env bash
# The migration soak at length (issue 11): tests/e2e/60-soak.sh's container (`gwtest soak`:
# memory checker, heartbeat, UNIX sockets, pty session, SysV shm, ptraced child, children of
# uids 1000 and 1001) moved SOAK_MOVES times (default 100) between the two test namespaces,
# alternating two default-policy moves and two --postcopy moves, everything checked after each
# move (tests/lib/soak.sh). Prints a line per move and ends "soak: N moves, F failures"; exits
# non-zero when F > 0. After a failed move the container is removed and a fresh one started on
# h1 (so F counts failures, not one failure and what it left behind); the run ends if that
# start fails. Run from the checkout as root, holding the VM lock (about 3.5 s a move under TCG,
# so 100 moves take ~6 min): flock /tmp/godwit-vm.lock bench/soak.sh (builds nothing: `make
# all guest` and tests/lib/mkimages.sh build/test-images first).
cd "$(dirname "$0")/.." || exit 1
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
. tests/lib/soak.sh
two_hosts
N=${SOAK_MOVES:-100}
fails=0 moves=0
times=$(mktemp)
echo "$times" >>"$ROOTS_FILE"
t0=$(date +%s)
started=1
if ! soak_start; then
	echo "soak: the container did not start: $SOAK_WHY"
	fails=1 started=0
fi
for ((i = 1; i <= N && started; i++)); do
	moves=$i
	if soak_move "$i"; then
		echo "$SOAK_LINE: ok"
		echo "$SOAK_KIND $SOAK_MS" >>"$times"
		continue
	fi
	fails=$((fails + 1))
	echo "$SOAK_LINE: FAIL: $SOAK_WHY"
	# a fresh container, on h1: the failure above is counted once
	hgw 1 rm -f "$SOAK" >/dev/null 2>&1
	hgw 2 rm -f "$SOAK" >/dev/null 2>&1
	soak_start || { echo "soak: restarting after move $i failed: $SOAK_WHY"; break; }
done
# the time of each kind of move, as migrate reported it: median (min-max)
awk '{ t[$1] = t[$1] " " $2 } END { for (k in t) { n = split(t[k], v, " ");
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
	printf "soak: %d %s moves, median %d ms (%d-%d)\n", n, k, v[int((n + 1) / 2)], v[1], v[n] } }' "$times"
echo "soak: $moves moves, $fails failures ($(( $(date +%s) - t0 )) s)"
hgw "$SOAK_AT" rm -f "$SOAK" >/dev/null 2>&1
[ "$fails" -eq 0 ]
