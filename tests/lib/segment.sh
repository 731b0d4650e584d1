# A network segment for the two hosts of tests/lib/netns.sh (sourced after it): namespace
# $SEG with bridge br0, the segment's router and client at 10.89.0.1/24 on it; each host's
# uplink (named uplink0 in the host's namespace) is a veth whose other end (seg1, seg2) is a
# port of br0. The hosts' own link (10.77.N.x) carries the migration stream. Streams of
# tests/lib/streamer.py run in $SEG; they and the namespace go at exit, after the hosts.
SEG=gw-seg-$$
STREAMERS=()
IN_OUT=$(mktemp)
OUT_OUT=$(mktemp)
echo "$IN_OUT" >>"$ROOTS_FILE"
echo "$OUT_OUT" >>"$ROOTS_FILE"

segment_setup() {
	ip netns add "$SEG" || return 1
	ip -n "$SEG" link set lo up
	ip -n "$SEG" link add br0 type bridge && ip -n "$SEG" addr add 10.89.0.1/24 dev br0 &&
		ip -n "$SEG" link set br0 up || return 1
	local h
	for h in 1 2; do
		ip link add "gwu$h-$$" type veth peer name "gws$h-$$" || return 1
		ip link set "gwu$h-$$" netns "$(hns $h)" && ip link set "gws$h-$$" netns "$SEG" || return 1
		ip -n "$(hns $h)" link set "gwu$h-$$" name uplink0 &&
			ip -n "$(hns $h)" link set uplink0 up || return 1
		ip -n "$SEG" link set "gws$h-$$" name "seg$h" &&
			ip -n "$SEG" link set "seg$h" master br0 up || return 1
	done
}

segment_cleanup() {
	local p
	for p in "${STREAMERS[@]}"; do kill "$p" 2>/dev/null; done
	netns_cleanup_all
	ip netns del "$SEG" 2>/dev/null
	return 0
}
trap segment_cleanup EXIT

# seg_stream connect|listen HOST PORT OUT: a streamer in the segment, in the background
seg_stream() {
	rm -f "$4" "$4.stop"
	ip netns exec "$SEG" python3 tests/lib/streamer.py "$@" </dev/null >/dev/null 2>&1 &
	STREAMERS+=($!)
}
# stream_field OUT KEY: one figure of a streamer's JSON
stream_field() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2" \
		2>/dev/null
}
# stream_up OUT: within 120 s the stream is connected and its first lines came back
stream_up() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(stream_field "$1" echoed)" -gt 0 ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# streams_flow N: both streams get N more lines back within 120 s
streams_flow() {
	local a b i
	a=$(stream_field "$IN_OUT" echoed)
	b=$(stream_field "$OUT_OUT" echoed)
	for ((i = 0; i < 600; i++)); do
		[ "$(stream_field "$IN_OUT" echoed)" -ge $((${a:-0} + $1)) ] 2>/dev/null &&
			[ "$(stream_field "$OUT_OUT" echoed)" -ge $((${b:-0} + $1)) ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# stream_ok OUT: "ok", or what went wrong (a reset, a close, a wrong line)
stream_ok() {
	local e b
	e=$(stream_field "$1" error)
	b=$(stream_field "$1" bad)
	if [ "$e" = None ] && [ "$b" = None ]; then echo ok; else echo "error: $e; bad: $b"; fi
}
stall_of() { stream_field "$1" max_stall_ms; }
# stall_in OUT T0 T1: the longest wait for an answer that ended between the epoch times T0
# and T1 (0: none of 50 ms or more)
stall_in() {
	python3 -c 'import json,sys; t0, t1 = float(sys.argv[2]), float(sys.argv[3])
print(max([ms for t, ms in json.load(open(sys.argv[1])).get("stalls", []) if t0 <= t <= t1] or [0]))' \
		"$1" "$2" "$3" 2>/dev/null
}
# streams_done: both streamers ended (at most 40 s after OUT.stop)
streams_done() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(stream_field "$IN_OUT" done)" = True ] && [ "$(stream_field "$OUT_OUT" done)" = True ] &&
			return 0
		sleep 0.2
	done
	return 1
}
# stream_end OUT: "complete" when it ended with every line back, in order
stream_end() {
	if [ "$(stream_field "$1" done)" = True ] && [ "$(stream_ok "$1")" = ok ] &&
		[ "$(stream_field "$1" sent)" = "$(stream_field "$1" echoed)" ]; then
		echo complete
	else
		echo "incomplete: $(cat "$1")"
	fi
}
