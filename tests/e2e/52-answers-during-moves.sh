#!/usr/bin/env bash
# While a container moves, godwit keeps answering: during a live pre-copy move and during the
# post-copy phase of another, `ps`, `logs` and `exec` on the destination and `migrate
# --status`, `--postcopy-now`, `--recover` and `--cancel` on the source each answer within 1 s,
# with what is true at that moment, the phase of each end's job included (a move is a job of
# each shim's event loop: these are control-API commands, docs/api.md). Between two hosts (network namespaces, tests/lib/netns.sh); the moves are slowed by --bandwidth so
# that each phase lasts long enough to ask.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts

P="memtest iter="
# quick WHAT CMD...: run CMD; it must end within 1 s. Its output in $OUT, its status in $RC.
quick() {
	local what=$1 t0 t1
	shift
	t0=$(date +%s%N)
	OUT=$("$@" 2>&1)
	RC=$?
	t1=$(date +%s%N)
	local ms=$(((t1 - t0) / 1000000))
	echo "# $what: $ms ms, exit $RC: $(head -c 160 <<<"$OUT" | tr '\n' ' ')"
	assert_true "$what: answers within 1 s ($ms ms)" test "$ms" -lt 1000
}

h1 run -d --name mv -m 1024M gwtest memtest 512 1 >/dev/null
wait_num 1 mv "$P" 2 300
b=$(last_num mv 1 "$P")

# 1. a live pre-copy move, while QEMU's RAM stream runs; then --cancel ends it
bg_move mv --no-postcopy --bandwidth 20M
assert_true "live: the RAM stream runs" \
	status_is mv "migrating; migration active, round [0-9]+, ([2-9]|[1-9][0-9]+) MiB sent" 300
quick "live: ps -a on the destination" h2 ps -a
assert_match "live: the destination lists it incoming" "^mv +[^ ]+ +incoming " "$(grep '^mv ' <<<"$OUT")"
quick "live: logs on the destination" h2 logs mv
assert_match "live: the destination has the log so far" "$P[0-9]+" "$OUT"
quick "live: exec on the destination" h2 exec mv gwtest echo hi
assert_eq "live: exec on the destination is refused (exit 125)" 125 "$RC"
assert_match "live: exec on the destination says why" "incoming|being migrated|not running" "$OUT"
quick "live: migrate --status on the source" h1 migrate --status mv
assert_match "live: the source reports the stream" "mv: migrating; migration active" "$OUT"
assert_match "live: the source's job is in its stream phase" "; phase stream$" "$OUT"
quick "live: migrate --status on the destination" h2 migrate --status mv
assert_match "live: the destination's job is in its stream phase" \
	"^mv: incoming; migration running; phase stream$" "$OUT"
quick "live: --postcopy-now on the source" h1 migrate --postcopy-now mv
assert_eq "live: --postcopy-now on a --no-postcopy move is refused (exit 125)" 125 "$RC"
assert_match "live: the source's shim says why" "started with --no-postcopy" "$OUT"
quick "live: --recover on the source" h1 migrate --recover mv "tcp:$H2_IP:$PORT"
assert_eq "live: --recover with nothing paused is refused (exit 125)" 125 "$RC"
assert_match "live: the source's shim says why" "nothing to recover" "$OUT"
# the source's shim itself guards the move: an exec there must wait until it ends
quick "live: exec on the source" h1 exec mv gwtest echo hi
assert_eq "live: exec on the source is refused (exit 125)" 125 "$RC"
assert_match "live: the source's shim says it must wait" \
	'container mv is being migrated or snapshotted: "exec" must wait until that ends' "$OUT"
quick "live: --cancel on the source" h1 migrate --cancel mv
assert_eq "live: --cancel is taken (exit 0)" 0 "$RC"
wait "$MIG"
assert_match "live: the move ends cancelled" "cancelled" "$(cat "$MOUT")"
wait_num 1 mv "$P" $((b + 2)) 300
assert_match "live: the source runs on" "^mv +gwtest +running " "$(h1 ps | grep '^mv ')"
for ((i = 0; i < 50; i++)); do [ -z "$(h2 ps -aq)$(leftovers "$R2")" ] && break; sleep 0.2; done

# 2. a post-copy move, in its post-copy phase (the destination runs the guest and pulls the
# pages it lacks at 50 MiB/s: a page the exec needs comes on demand meanwhile)
b=$(last_num mv 1 "$P")
bg_move mv --postcopy --bandwidth 50M
assert_true "post-copy: the move switched" status_is mv "migration postcopy-active" 300
quick "post-copy: ps on the destination" h2 ps
assert_match "post-copy: the destination runs it" "^mv +gwtest +running " "$(grep '^mv ' <<<"$OUT")"
quick "post-copy: logs on the destination" h2 logs mv
assert_match "post-copy: the destination's log" "$P[0-9]+" "$OUT"
quick "post-copy: exec on the destination" h2 exec mv gwtest echo alive
assert_eq "post-copy: exec runs on the destination" "alive" "$OUT"
quick "post-copy: migrate --status on the source" h1 migrate --status mv
assert_match "post-copy: the source reports post-copy" "mv: migrating; migration postcopy-active" "$OUT"
assert_match "post-copy: the source's job is in its post-copy phase" "; phase post-copy$" "$OUT"
quick "post-copy: migrate --status on the destination" h2 migrate --status mv
assert_match "post-copy: the destination's job is in its post-copy phase" \
	"^mv: running; .*; phase post-copy$" "$OUT"
quick "post-copy: --postcopy-now on the source" h1 migrate --postcopy-now mv
assert_match "post-copy: --postcopy-now says it is in post-copy already" "already in post-copy" "$OUT"
quick "post-copy: --cancel on the source" h1 migrate --cancel mv
assert_eq "post-copy: --cancel is refused (exit 125)" 125 "$RC"
assert_match "post-copy: --cancel says why" "switched to post-copy.*lose" "$OUT"
wait "$MIG"; rc=$?
echo "# post-copy move: $(tail -n 1 "$MOUT")"
assert_eq "post-copy: the move completes" 0 "$rc"
moved 1 2 mv "$P" "$b"
assert_eq "post-copy: never CORRUPT" "" "$(hgw 2 logs mv | grep CORRUPT)"
kernel_ok 2 mv "post-copy"
hgw 2 rm -f mv >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
