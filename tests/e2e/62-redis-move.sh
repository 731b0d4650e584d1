#!/usr/bin/env bash
# A real server image moves while it serves (issue 13): Redis from Debian's packages
# (tests/lib/mkredis.sh: debootstrap + redis-server, cached under build/) on network "lan" of
# the segment topology (tests/lib/segment.sh). A client in the segment holds one connection
# and writes and reads back a key every 10 ms (tests/lib/streamer.py redis) through a pre-copy
# move h1→h2 and a move back asked for with --postcopy: the connection is never reset,
# every SET is answered OK and every GET returns what was written (at the end, a sample of all keys is read back
# again); the client-seen stall is printed beside QEMU's downtime.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
. tests/lib/segment.sh
REDIS=build/redis-image	# one copy for make check and check-asan (BUILD=build-asan)
tests/lib/mkredis.sh "$REDIS" || { not_ok "the Redis image (tests/lib/mkredis.sh)"; finish; exit 1; }
netns_setup || { not_ok "network namespaces"; finish; exit 1; }
segment_setup || { not_ok "segment namespace"; finish; exit 1; }
IP=10.89.0.21
for h in 1 2; do
	assert_match "h$h: the Redis image loads" "redis:7" "$(hgw $h load -i "$REDIS/redis-docker.tar" 2>&1)"
	assert_eq "h$h: network lan on its uplink" "lan" \
		"$(hgw $h network create lan --subnet 10.89.0.0/24 --gateway 10.89.0.1 --uplink uplink0 2>&1)"
done
h1 run -d --name db -m 512M --network lan --ip $IP redis:7 >/dev/null
seg_stream redis $IP 6379 "$IN_OUT"
assert_true "the client's connection to Redis is up" stream_up "$IN_OUT"
# flowing: N more keys written and read back within 120 s
keys_flow() {
	local a i
	a=$(stream_field "$IN_OUT" echoed)
	for ((i = 0; i < 600; i++)); do
		[ "$(stream_field "$IN_OUT" echoed)" -ge $((${a:-0} + $1)) ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
assert_true "keys are written and read back" keys_flow 100

redis_move() { # FROM TO KIND ARGS...
	local from=$1 to=$2 kind=$3 what="$3 h$1→h$2" out rc t0 t1
	shift 3
	t0=$(date +%s.%N)
	out=$(migrate_to "$from" "$to" db --json "$@" 2>&1); rc=$?
	assert_eq "$what: migrate exits 0" 0 "$rc"
	[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
	assert_match "$what: kind $kind" "\"kind\":\"($kind)\"" "$out"
	echo "# $what: $(grep -o '"kind":"[a-z]*"' <<<"$out")"
	assert_match "$what: the source shows migrated" "^db +[a-z:0-9]+ +migrated " \
		"$(hgw "$from" ps -a | grep '^db ')"
	assert_match "$what: the destination runs it" "^db +[a-z:0-9]+ +running " \
		"$(hgw "$to" ps | grep '^db ')"
	assert_true "$what: keys flow on" keys_flow 200
	t1=$(date +%s.%N)
	assert_eq "$what: every key read back, the connection intact" "ok" "$(stream_ok "$IN_OUT")"
	echo "# $what: QEMU downtime $(sed -n 's/.*"downtime_ms":\([0-9]*\).*/\1/p' <<<"$out") ms;" \
		"the client's longest wait for an answer during the move: $(stall_in "$IN_OUT" "$t0" "$t1") ms"
	hgw "$from" rm db >/dev/null
}
redis_move 1 2 live
# asked for post-copy: a quiet Redis may complete its last pre-copy round before the switch
# lands (61 moves a busier guest that always switches)
redis_move 2 1 "postcopy|live" --postcopy

touch "$IN_OUT.stop"
for ((i = 0; i < 200; i++)); do
	[ "$(stream_field "$IN_OUT" done)" = True ] && break
	sleep 0.2
done
echo "# client: $(cat "$IN_OUT")"
assert_eq "the client: every SET answered OK, every GET right, never reset" "complete" \
	"$(stream_end "$IN_OUT")"
finish
