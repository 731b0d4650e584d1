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
# start_move NAME [STALL] [ARGS]: incoming on h2 (with the stall hook), migrate in the background
start_move() {
	local stall=$1
	shift
	PORT=$((PORT + 1))
	GODWIT_TEST_MIG_STALL=$stall h2 incoming --name src --listen "tcp:$H2_IP:$PORT" >/dev/null
	h1 migrate "$@" src "tcp:$H2_IP:$PORT" >"$OUT" 2>&1 &
	MIG=$!
}
OUT=$(mktemp)
echo "$OUT" >>"$ROOTS_FILE" # removed at exit with the roots

h1 run -d --name src -m 256M gwtest counter 100 >/dev/null
for ((i = 0; i < 100; i++)); do [ "$(last_num)" ] && break; sleep 0.2; done

# refusal: the image is not on h2
b=$(last_num)
start_move ""
wait "$MIG"; rc=$?
assert_true "refused: migrate fails" test "$rc" -ne 0
assert_match "refused: the message names the missing image" "image-missing.*image sha256:[0-9a-f]{64} is not on this host" "$(cat "$OUT")"
src_ok "refused" "$b"
dest_clean "refused"
h2 load -i "$IMAGES/gwtest-oci" >/dev/null

# nothing listening
out=$(h1 migrate src "tcp:$H2_IP:1" 2>&1); rc=$?
assert_true "no destination: migrate fails" test "$rc" -ne 0
assert_match "no destination: clear message" "refused|connect" "$out"

# an incoming container no source ever connects to: listed, and `rm -f` ends the wait
PORT=$((PORT + 1))
h2 incoming --name lone --listen "tcp:$H2_IP:$PORT" >/dev/null
assert_match "lone incoming: ps lists it" "^lone +- +incoming .*waiting for the source" "$(h2 ps | grep '^lone ')"
out=$(h2 rm lone 2>&1); rc=$?
assert_true "lone incoming: rm without -f refuses" test "$rc" -ne 0
assert_match "lone incoming: rm says why" "lone is incoming: stop it first or use -f" "$out"
assert_eq "lone incoming: rm -f removes it" "lone" "$(h2 rm -f lone 2>&1)"
assert_eq "lone incoming: no record, shim or listener left" "" \
	"$(h2 ps -aq)$(leftovers "$R2")$(ip netns exec "$NS2" ss -Hltn "sport = :$PORT")"

# kill_in PHASE WHAT STALL [ARGS]: kill the destination's WHAT (qemu|shim) DELAY s into it
kill_in() {
	local what=$1 victim=$2 stall=$3 delay=$4
	shift 4
	b=$(last_num)
	start_move "$stall" "$@"
	sleep "$delay"
	local pid
	if [ "$victim" = qemu ]; then pid=$(qemu_pid_of 2 src); else pid=$(shim_pid_of 2 src); fi
	assert_true "$what: the destination's $victim was there to kill" test -n "$pid"
	[ -n "$pid" ] && kill -9 $pid
	wait "$MIG"; rc=$?
	assert_true "$what: migrate fails" test "$rc" -ne 0
	echo "# $what: $(tr '\r' '\n' <"$OUT" | tail -n 1)"
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
kill_in "QEMU killed before PREPARE" qemu prepare 1.5
kill_in "shim killed before PREPARE" shim prepare 1.5
kill_in "QEMU killed during the RAM stream" qemu "" 2.5 --bandwidth 20M
kill_in "shim killed during the RAM stream" shim "" 2.5 --bandwidth 20M
kill_in "QEMU killed after DONE" qemu done 3

# the link goes down mid-transfer: keepalive/user timeout turn it into an error on both ends
b=$(last_num)
start_move "" --bandwidth 20M
sleep 2
ip -n "$NS2" link set "$VETH2" down
t0=$(date +%s)
wait "$MIG"; rc=$?
echo "# link down: $(tr '\r' '\n' <"$OUT" | tail -n 1) after $(( $(date +%s) - t0 )) s"
assert_true "link down: migrate fails" test "$rc" -ne 0
ip -n "$NS2" link set "$VETH2" up
src_ok "link down" "$b"
dest_clean "link down"

# cancel: Ctrl-C on `godwit migrate` asks the shim to cancel; before the commit the source
# runs on
b=$(last_num)
start_move "" --bandwidth 20M
sleep 2
pkill -INT -f -- "--root $R1 migrate --bandwidth" # the godwit process, not the subshell
wait "$MIG"; rc=$?
assert_true "cancel (Ctrl-C): migrate fails" test "$rc" -ne 0
assert_match "cancel (Ctrl-C): says it was cancelled" "cancelled" "$(cat "$OUT")"
src_ok "cancel (Ctrl-C)" "$b"
dest_clean "cancel (Ctrl-C)"
# the same through `godwit migrate --cancel`, and --status while it runs
b=$(last_num)
start_move "" --bandwidth 20M
sleep 2
assert_match "migrate --status while it runs" "src: migrating; migration (active|setup)" "$(h1 migrate --status src)"
h1 migrate --cancel src >/dev/null
wait "$MIG"; rc=$?
assert_true "migrate --cancel: migrate fails" test "$rc" -ne 0
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
sleep 2
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
start_move done
sleep 3
pid=$(shim_pid_of 2 src)
kill -9 $pid
wait "$MIG"; rc=$?
assert_true "shim killed after COMMIT: migrate fails" test "$rc" -ne 0
assert_match "shim killed after COMMIT: the source says why it stays paused" "source stays paused" "$(cat "$OUT")"
assert_match "shim killed after COMMIT: source paused, not running" "^src +gwtest +paused " "$(h1 ps -a | grep '^src ')"
assert_true "shim killed after COMMIT: the source's QEMU keeps the state" test -n "$(qemu_pid_of 1 src)"
orphan=$(qemu_pid_of 2 src)
[ -n "$orphan" ] && kill -9 $orphan
h2 rm -f src >/dev/null 2>&1
h1 rm -f src >/dev/null

# the source dies mid-transfer: its QEMU goes with its shim, and the destination removes all
h1 run -d --name src -m 256M gwtest counter 100 >/dev/null
for ((i = 0; i < 100; i++)); do [ "$(last_num)" ] && break; sleep 0.2; done
start_move "" --bandwidth 20M
sleep 2
kill -9 "$(shim_pid_of 1 src)"
wait "$MIG"
for ((i = 0; i < 50; i++)); do [ -z "$(qemu_pid_of 1 src)" ] && break; sleep 0.2; done
assert_eq "source killed: its QEMU went with its shim" "" "$(qemu_pid_of 1 src)"
assert_match "source killed: its record says it stopped" "^src +gwtest +stopped " "$(h1 ps -a | grep '^src ')"
dest_clean "source killed"
h1 rm -f src >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
