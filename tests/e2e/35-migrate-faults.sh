#!/usr/bin/env bash
# Migration faults between two hosts (network namespaces, tests/lib/netns.sh): the destination
# refuses (image missing), its QEMU or shim dies before PREPARE, during the RAM stream and after
# DONE, the link goes down mid-transfer. After each, the source runs on (its counter keeps
# growing without reset or gap, exec works) and nothing is left on the destination (no record,
# no QEMU, no shim). The last case, the destination shim dying after the source sent COMMIT,
# shows the two-copies rule: the source stays paused (docs/migration-protocol.md §4).
. tests/lib/e2e.sh
. tests/lib/netns.sh
netns_setup || { not_ok "network namespaces (need root and iproute2)"; finish; exit 1; }
h1 load -i "$IMAGES/gwtest-oci" >/dev/null

last_num() { h1 logs src 2>/dev/null | sed -n 's/^counter \([0-9][0-9]*\)$/\1/p' | tail -n 1; }
# the source is fine: running, counting on from where it was, no gap, exec works
src_ok() {
	local what=$1 before=$2 i now
	for ((i = 0; i < 50; i++)); do
		now=$(last_num)
		[ "${now:-0}" -ge $((before + 3)) ] && break
		sleep 0.2
	done
	assert_match "$what: source still running" "^src +gwtest +running " "$(h1 ps | grep '^src ')"
	assert_true "$what: source counter keeps growing ($before → $now)" test "${now:-0}" -gt "$before"
	local bad
	bad=$(h1 logs src | sed -n 's/^counter \([0-9][0-9]*\)$/\1/p' |
		awk 'BEGIN { n = 0 } $1 != n { print "expected " n ", got " $1; exit } { n++ }')
	assert_eq "$what: source logs continuous" "" "$bad"
	assert_eq "$what: exec works on the source" "alive" "$(h1 exec src gwtest echo alive 2>&1)"
}
# nothing of the container on h2: no record, no shim, no QEMU
dest_clean() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -z "$(h2 ps -aq)$(leftovers "$R2")$(ls "$R2/containers")" ] && break
		sleep 0.2
	done
	assert_eq "$1: nothing left on the destination" "" "$(h2 ps -aq)$(leftovers "$R2")$(ls "$R2/containers")"
}
# start_move STALL [ARGS]: incoming on h2, migrate in the background. STALL (prepare|done)
# holds the destination shim 3 s at that point: tests/lib/mig_stall.c, preloaded (an ASan
# build lets a library that is not sanitized load before its runtime)
STALL_LIB=$PWD/${BUILD:-build}/tests/mig_stall.so
start_move() {
	local stall=$1
	shift
	PORT=$((PORT + 1))
	if [ -n "$stall" ]; then
		LD_PRELOAD=$STALL_LIB GODWIT_TEST_MIG_STALL=$stall \
			ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
			h2 incoming --name src --listen "tcp:$H2_IP:$PORT" --insecure >/dev/null
	else
		h2 incoming --name src --listen "tcp:$H2_IP:$PORT" --insecure >/dev/null
	fi
	h1 migrate "$@" src "tcp:$H2_IP:$PORT" >"$OUT" 2>&1 &
	MIG=$!
}
OUT=$(mktemp)
echo "$OUT" >>"$ROOTS_FILE" # removed at exit with the roots

GODWIT_MIG_TRACE=1 h1 run -d --name src -m 256M gwtest counter 100 >/dev/null
for ((i = 0; i < 100; i++)); do [ "$(last_num)" ] && break; sleep 0.2; done

# refusal: the image is not on h2
b=$(last_num)
start_move ""
wait "$MIG"; rc=$?
failed_as "refused" "image-missing.*image sha256:[0-9a-f]{64} is not on this host"
src_ok "refused" "$b"
dest_clean "refused"
h2 load -i "$IMAGES/gwtest-oci" >/dev/null

# nothing listening
out=$(h1 migrate src "tcp:$H2_IP:1" 2>&1); rc=$?
assert_eq "no destination: migrate fails with exit 125" 125 "$rc"
assert_match "no destination: clear message" "^godwit migrate: .*(refused|connect)" "$out"

# an incoming container no source ever connects to: listed, and `rm -f` ends the wait
PORT=$((PORT + 1))
h2 incoming --name lone --listen "tcp:$H2_IP:$PORT" --insecure >/dev/null
assert_match "lone incoming: ps lists it" "^lone +- +incoming .*waiting for the source" "$(h2 ps | grep '^lone ')"
out=$(h2 rm lone 2>&1); rc=$?
assert_eq "lone incoming: rm without -f refuses (exit 125)" 125 "$rc"
assert_match "lone incoming: rm says why" "lone is incoming: stop it first or use -f" "$out"
assert_eq "lone incoming: rm -f removes it" "lone" "$(h2 rm -f lone 2>&1)"
assert_eq "lone incoming: no record, shim or listener left" "" \
	"$(h2 ps -aq)$(leftovers "$R2")$(ip netns exec "$NS2" ss -Hltn "sport = :$PORT")"

# moves_at WHEN: wait (at most 30 s) for a point of the move on h2 or h1. "stall:PHASE": the
# destination shim's log says its test stall at PHASE began (it holds there 3 s);
# "stream": the source's `migrate --status` says QEMU's migration is active with at least
# 2 MiB sent (the RAM stream runs; --bandwidth 20M keeps it going for seconds)
moves_at() {
	local i
	for ((i = 0; i < 150; i++)); do
		case $1 in
		stall:*) grep -q "test stall at ${1#stall:}" "$R2/containers/src/shim.log" 2>/dev/null && return 0 ;;
		stream) h1 migrate --status src 2>/dev/null |
			grep -qE "migrating; migration active, round [0-9]+, ([2-9]|[1-9][0-9]+) MiB sent" && return 0 ;;
		esac
		sleep 0.2
	done
	return 1
}
# failed_as WHAT RE: the move failed as godwit's own error (exit 125; a crash or a sanitizer
# abort exits otherwise) with a message matching RE
failed_as() {
	assert_eq "$1: migrate fails with exit 125" 125 "$rc"
	assert_match "$1: migrate says why" "^godwit migrate: .*($2)" "$(tr '\r' '\n' <"$OUT" | grep -a '^godwit migrate: ' | tail -n 1)"
}

# kill_in WHAT VICTIM WHEN RE [ARGS]: kill the destination's VICTIM (qemu|shim) at WHEN
# (moves_at); migrate must fail with RE
kill_in() {
	local what=$1 victim=$2 when=$3 re=$4 stall=""
	shift 4
	[[ $when == stall:* ]] && stall=${when#stall:}
	b=$(last_num)
	start_move "$stall" "$@"
	assert_true "$what: the move reached the point of the kill ($when)" moves_at "$when"
	local pid
	if [ "$victim" = qemu ]; then pid=$(qemu_pid_of 2 src); else pid=$(shim_pid_of 2 src); fi
	assert_true "$what: the destination's $victim was there to kill" test -n "$pid"
	[ -n "$pid" ] && kill -9 $pid
	wait "$MIG"; rc=$?
	echo "# $what: $(tr '\r' '\n' <"$OUT" | tail -n 1)"
	failed_as "$what" "$re"
	if [ "$victim" = shim ]; then # a killed shim cannot clean up: `rm -f` does
		local orphan; orphan=$(qemu_pid_of 2 src)
		assert_eq "$what: the killed shim's QEMU went with it" "" "$orphan"
		[ -n "$orphan" ] && kill -9 $orphan # (needs src/hv/qemu.c: PDEATHSIG)
		h2 rm -f src >/dev/null 2>&1
		assert_eq "$what: rm -f clears what the killed shim left" "" "$(ls "$R2/containers")"
		rm -rf "$R2/containers/src" # so that the next case can run
	fi
	src_ok "$what" "$b"
	dest_clean "$what"
}
kill_in "QEMU killed before PREPARE" qemu stall:prepare "Failed to connect to '[0-9.]+:[0-9]+': Connection refused"
kill_in "shim killed before PREPARE" shim stall:prepare "waiting for PREPARE: (peer closed the connection|.*reset by peer)"
kill_in "QEMU killed during the RAM stream" qemu stream "QEMU's migration failed: |peer aborted: destination-failed" --bandwidth 20M
kill_in "shim killed during the RAM stream" shim stream "QEMU's migration failed: |peer closed|Connection reset" --bandwidth 20M
kill_in "QEMU killed after DONE" qemu stall:done "peer aborted: destination-failed: "

# the link goes down mid-transfer: keepalive/user timeout turn it into an error on both ends
b=$(last_num)
start_move "" --bandwidth 20M
assert_true "link down: the move reached the RAM stream" moves_at stream
ip -n "$NS2" link set "$VETH2" down
t0=$(date +%s)
wait "$MIG"; rc=$?
echo "# link down: $(tr '\r' '\n' <"$OUT" | tail -n 1) after $(( $(date +%s) - t0 )) s"
# (QEMU words a dead link as its socket's error, a timeout, or, when its channel fails with
# no errno of its own, "Channel error: Input/output error": .ci/run, session 10)
failed_as "link down" "QEMU's migration failed: .*(socket|No route to host|timed out|Channel error: Input/output error)"
ip -n "$NS2" link set "$VETH2" up
src_ok "link down" "$b"
dest_clean "link down"

# cancel: Ctrl-C on `godwit migrate` asks the shim to cancel; before the commit the source
# runs on
b=$(last_num)
start_move "" --bandwidth 20M
assert_true "cancel (Ctrl-C): the move reached the RAM stream" moves_at stream
pkill -INT -f -- "--root $R1 migrate --bandwidth" # the godwit process, not the subshell
wait "$MIG"; rc=$?
failed_as "cancel (Ctrl-C)" "cancelled"
src_ok "cancel (Ctrl-C)" "$b"
dest_clean "cancel (Ctrl-C)"
# the same through `godwit migrate --cancel`, and --status while it runs
b=$(last_num)
start_move "" --bandwidth 20M
assert_true "migrate --status while it runs: QEMU's stream is active" moves_at stream
h1 migrate --cancel src >/dev/null
wait "$MIG"; rc=$?
failed_as "migrate --cancel" "cancelled"
src_ok "migrate --cancel" "$b"
dest_clean "migrate --cancel"
assert_match "migrate --status after it" "migration failed: .*cancelled" "$(h1 migrate --status src)"
# --postcopy-now: refused, with the reason, when no migration runs or the running one was not
# set up for post-copy (--no-postcopy: no disk mirror, no postcopy-ram); the migration itself
# goes on
out=$(h1 migrate --postcopy-now src 2>&1); rc=$?
assert_eq "postcopy-now without a migration: exit 125" 125 "$rc"
assert_match "postcopy-now without a migration: says so" "no migration .* is running" "$out"
b=$(last_num)
start_move "" --no-postcopy --bandwidth 20M
assert_true "postcopy-now on a pre-copy move: the move reached the RAM stream" moves_at stream
out=$(h1 migrate --postcopy-now src 2>&1); rc=$?
assert_eq "postcopy-now on a pre-copy move: exit 125" 125 "$rc"
assert_match "postcopy-now on a pre-copy move: says why" "started with --no-postcopy" "$out"
assert_match "postcopy-now on a pre-copy move: it still runs" "src: migrating; migration active" \
	"$(h1 migrate --status src)"
h1 migrate --cancel src >/dev/null
wait "$MIG"
src_ok "postcopy-now refused" "$b"
dest_clean "postcopy-now refused"

# after COMMIT the source cannot take the guest back: the destination shim dies once the
# source sent COMMIT, so the source stays paused with its QEMU (operator decides)
commits=$(grep -c "source: log tail and COMMIT sent" "$R1/containers/src/shim.log")
start_move done
assert_true "shim killed after COMMIT: the destination holds after DONE" moves_at stall:done
for ((i = 0; i < 50; i++)); do
	[ "$(grep -c "source: log tail and COMMIT sent" "$R1/containers/src/shim.log")" -gt "$commits" ] && break
	sleep 0.05
done
assert_true "shim killed after COMMIT: the source's trace says COMMIT was sent" \
	test "$(grep -c "source: log tail and COMMIT sent" "$R1/containers/src/shim.log")" -gt "$commits"
pid=$(shim_pid_of 2 src)
kill -9 $pid
wait "$MIG"; rc=$?
failed_as "shim killed after COMMIT" "source stays paused"
assert_match "shim killed after COMMIT: source paused, not running" "^src +gwtest +paused " "$(h1 ps -a | grep '^src ')"
assert_true "shim killed after COMMIT: the source's QEMU keeps the state" test -n "$(qemu_pid_of 1 src)"
orphan=$(qemu_pid_of 2 src)
[ -n "$orphan" ] && kill -9 $orphan
h2 rm -f src >/dev/null 2>&1
h1 rm -f src >/dev/null

# the source dies mid-transfer: its QEMU goes with its shim, and the destination removes all
GODWIT_MIG_TRACE=1 h1 run -d --name src -m 256M gwtest counter 100 >/dev/null
for ((i = 0; i < 100; i++)); do [ "$(last_num)" ] && break; sleep 0.2; done
start_move "" --bandwidth 20M
assert_true "source killed: the move reached the RAM stream" moves_at stream
kill -9 "$(shim_pid_of 1 src)"
wait "$MIG"; rc=$?
failed_as "source killed" "the shim of src exited during the move"
for ((i = 0; i < 50; i++)); do [ -z "$(qemu_pid_of 1 src)" ] && break; sleep 0.2; done
assert_eq "source killed: its QEMU went with its shim" "" "$(qemu_pid_of 1 src)"
assert_match "source killed: its record says it stopped" "^src +gwtest +stopped " "$(h1 ps -a | grep '^src ')"
dest_clean "source killed"
h1 rm -f src >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
