#!/usr/bin/env bash
# Network benchmark (issue 13): a container on a segment (tests/lib/segment.sh: a segment
# namespace with a bridge and the client at 10.89.0.1; two host namespaces whose uplinks plug
# into it; the migration stream on the hosts' own link), and the same guest kernel under bare
# QEMU with a tap on the same bridges as the anchor.
#  1. Throughput client→guest: 128 MiB through one TCP connection (`gwtest serve` reads them),
#     into the godwit container, into the anchor guest, and into a host namespace's address on
#     the same bridge and veth (the physical limit of this path).
#  2. The pause a client sees: tests/lib/streamer.py holds one TCP connection to an echo
#     server in the guest (100 lines a second each way) through a move h1→h2 and back; its
#     longest wait for an echo ("client-seen stall"), beside the guest's heartbeat pause
#     (bench/bt.py gaps, as bench/migrate.sh measures it) and QEMU's downtime, for:
#       godwit pre-copy (default policy), godwit --postcopy back,
#       QEMU defaults (destination tap up on the bridge from the start, QEMU's own
#       announce at the end: what libvirt does), QEMU with max-bandwidth BENCH_TUNED_BW.
# BENCH_RUNS runs of each (default 3); medians. Usage: bench/network.sh
source "$(dirname "$0")/lib.sh"
# the whole benchmark is one VM job (two of its VMs run at once only while they move)
[ -n "${GODWIT_VM_LOCK_HELD:-}" ] || exec env GODWIT_VM_LOCK_HELD=1 flock "$LOCK" "$0" "$@"
MEM=512
TMO=${BENCH_MIG_TIMEOUT:-60}
TUNED_BW=${BENCH_TUNED_BW:-10737418240}
PORT=${BENCH_PORT:-7490}
BYTES_MIB=128
export ROOTS_FILE
ROOTS_FILE=$(mktemp)

anchor_build
images_build
net_setup
[ "$BENCH_NET" = netns ] || { echo "bench/network.sh needs network namespaces"; exit 1; }
hns() { if [ "$1" = 1 ]; then echo "$NS_SRC"; else echo "$NS_DST"; fi; }
two_roots n
# what tests/lib/segment.sh's cleanup calls after its own
netns_cleanup_all() {
	roots_cleanup
	rm -rf $(cat "$ROOTS_FILE") "$ROOTS_FILE"
}
source tests/lib/segment.sh
segment_setup
gwa() { ip netns exec "$NS_SRC" "$G" --root "$RA" "$@"; }
gwb() { ip netns exec "$NS_DST" "$G" --root "$RB" "$@"; }
gwh() { if [ "$1" = 1 ]; then shift; gwa "$@"; else shift; gwb "$@"; fi; }
hip() { if [ "$1" = 1 ]; then echo "$SRC_IP"; else echo "$DST_IP"; fi; }
for h in 1 2; do
	gwh $h load -i "$IMGS/gwtest-oci.tar" >/dev/null
	gwh $h network create lan --subnet 10.89.0.0/24 --gateway 10.89.0.1 --uplink uplink0 >/dev/null
done
BR=$(gwa network inspect lan | python3 -c 'import json,sys; print(json.load(sys.stdin)["bridge"])')

# send_mibs ADDR: MiB/s of BYTES_MIB MiB sent from the segment to ADDR's sink on port 5101,
# timed from the connect until the sink closed (it had read everything)
send_mibs() {
	ip netns exec "$SEG" python3 - "$1" "$BYTES_MIB" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5101), timeout=60)
buf, n = b"\0" * (1 << 20), int(sys.argv[2])
t0 = time.monotonic()
for _ in range(n):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print("%.1f" % (n / (time.monotonic() - t0)))
PY
}

# The godwit container: echo on 5000, a sink on 5101 (the anchor's programs), the heartbeat
GCMD='/bin/gwtest serve 5000 1 & /bin/gwtest serve 5101 0 & exec /bin/gwtest heartbeat'
gw_start() {
	gwa run -d -m "${MEM}M" --name nb --network lan --ip 10.89.0.11 --entrypoint /bin/sh gwtest \
		-c "$GCMD" >/dev/null
	for _ in $(seq 300); do gwa logs nb 2>/dev/null | grep -q '^hb ' && break; sleep 0.1; done
	for _ in $(seq 100); do
		ip netns exec "$SEG" busybox nc -w 1 10.89.0.11 5000 </dev/null >/dev/null 2>&1 && break
		sleep 0.2
	done
}

# anchor QEMUs: QDIR's src on h1 (tap gwqs on h1's bridge) and, for a move, dst on h2 (tap
# gwqd on h2's bridge, -incoming defer)
QNIC=52:54:00:89:00:12
q_start() { # DIR HOST incoming?
	local d=$1 h=$2 ns tap name
	ns=$(hns "$h")
	name=$([ "$3" = 1 ] && echo dst || echo src)
	tap=gwq$name$$
	ip -n "$ns" tuntap add dev "$tap" mode tap
	ip -n "$ns" link set "$tap" master "$BR" up
	local common
	# shellcheck disable=SC2207
	common=($(q_base "$MEM") -append "$Q_APPEND BENCH=net NETIP=10.89.0.12 MEM=0 MS=0")
	local inc=()
	[ "$3" = 1 ] && inc=(-incoming defer)
	ip netns exec "$ns" "${common[@]}" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
		-device "virtio-net-pci,netdev=n0,mac=$QNIC" \
		-chardev "socket,id=s0,path=$d/$name.ser,server=on,wait=off" -serial chardev:s0 \
		-qmp "unix:$d/$name.qmp,server=on,wait=off" "${inc[@]}" >"$d/$name.out" 2>&1 &
}
q_stop() { # DIR
	python3 "$BT" qmpcmd "$1/src.qmp" quit
	python3 "$BT" qmpcmd "$1/dst.qmp" quit
	sleep 1
	for p in $(pgrep -f -- "$1/" || true); do kill -9 "$p" 2>/dev/null || true; done
	for ns in "$NS_SRC" "$NS_DST"; do
		for t in $(ip -n "$ns" -o link show | grep -o "gwq[a-z]*$$" || true); do
			ip -n "$ns" link del "$t" 2>/dev/null || true
		done
	done
}

# 1. throughput
tput() { # WHO N: one figure
	case $1 in
	veth)
		ip netns exec "$NS_SRC" busybox nc -l -p 5101 -e sh -c 'cat >/dev/null' &
		local p=$!
		sleep 0.5
		send_mibs 10.89.0.250
		kill "$p" 2>/dev/null
		;;
	godwit) send_mibs 10.89.0.11 ;;
	anchor) send_mibs 10.89.0.12 ;;
	esac
}
: >"$OUT/net-tput.txt"
# the limit first, with no VM running: an address of h1's on the bridge
ip -n "$NS_SRC" addr add 10.89.0.250/24 dev "$BR"
for i in $(seq "$BENCH_RUNS"); do echo "veth $(tput veth)" >>"$OUT/net-tput.txt"; done
ip -n "$NS_SRC" addr del 10.89.0.250/24 dev "$BR"
# then each guest alone
gw_start
for i in $(seq "$BENCH_RUNS"); do echo "godwit $(tput godwit)" >>"$OUT/net-tput.txt"; done
gwa rm -f nb >/dev/null
QD=$WD/tput
mkdir -p "$QD"
q_start "$QD" 1 0
for _ in $(seq 300); do
	ip netns exec "$SEG" busybox nc -w 1 10.89.0.12 5000 </dev/null >/dev/null 2>&1 && break
	sleep 0.2
done
for i in $(seq "$BENCH_RUNS"); do echo "anchor $(tput anchor)" >>"$OUT/net-tput.txt"; done
q_stop "$QD"

# 2. moves with a client stream
# stream_move KIND N: one move of KIND (godwit: h1→h2 default then h2→h1 --postcopy, printing
# two JSON lines; qemu, tuned: bare QEMU h1→h2), with a fresh streamer each
stream_start() {
	local f=$WD/stream.json
	rm -f "$f" "$f.stop"
	ip netns exec "$SEG" python3 tests/lib/streamer.py connect "$1" 5000 "$f" </dev/null \
		>/dev/null 2>&1 &
	for _ in $(seq 300); do
		[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("echoed", 0))' "$f" 2>/dev/null || echo 0)" -gt 50 ] && break
		sleep 0.2
	done
}
stream_stop() { # prints the streamer's JSON once it ended
	local f=$WD/stream.json
	touch "$f.stop"
	for _ in $(seq 200); do
		python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["done"] else 1)' "$f" 2>/dev/null && break
		sleep 0.2
	done
	cat "$f"
}
# a JSON line: the move's figures, the stream's and the heartbeat's gaps
report() { # WHO RESULT STREAM GAPS
	python3 - "$@" <<'PY'
import json, sys
who, res, st, gaps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
try:
    r = json.loads(res)
except ValueError:
    r = {"completed": False}
r.setdefault("completed", "total_ms" in r)
s = json.loads(st) if st.strip() else {}
r["who"] = who
r["stall_ms"] = s.get("max_stall_ms")
r["stream_ok"] = bool(s.get("done")) and s.get("error") is None and s.get("bad") is None and \
    s.get("sent") == s.get("echoed")
r["stream_error"] = s.get("error") or s.get("bad")
r.update(json.loads(gaps) if gaps.strip() else {})
r.pop("actions", None)
print(json.dumps(r))
PY
}
gw_move() { # FROM TO WHO FLAGS...
	local from=$1 to=$2 who=$3 res t0 t1 st
	shift 3
	PORT=$((PORT + 1))
	gwh "$to" incoming --name nb --listen "tcp:$(hip "$to"):$PORT" --insecure >/dev/null
	stream_start 10.89.0.11
	t0=$(date +%s.%N)
	res=$(gwh "$from" migrate --json "$@" nb "tcp:$(hip "$to"):$PORT" 2>"$WD/err") || true
	t1=$(date +%s.%N)
	sleep 4
	st=$(stream_stop)
	gwh "$to" logs -t nb >"$WD/nb.log" 2>/dev/null || true
	local held rel gaps
	held=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("held_output_first_rx",""))' "$res" 2>/dev/null)
	rel=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("held_output_released",""))' "$res" 2>/dev/null)
	gaps=$(python3 "$BT" gaps "$WD/nb.log" "$t0" "$t1" "${held:--}" "${rel:--}")
	gwh "$from" rm -f nb >/dev/null 2>&1 || true
	report "$who" "$res" "$st" "$gaps"
}
q_move() { # WHO BANDWIDTH N
	local d=$WD/q-$1-$3 res st gaps rpid
	mkdir -p "$d"
	q_start "$d" 1 0
	q_start "$d" 2 1
	python3 "$BT" reader "$d/serial.log" "$d/src.ser" "$d/dst.ser" &
	rpid=$!
	for _ in $(seq 300); do grep -q ' hb ' "$d/serial.log" 2>/dev/null && break; sleep 0.1; done
	stream_start 10.89.0.12
	res=$(python3 "$BT" qmpmig "$d/src.qmp" "$d/dst.qmp" "tcp:$DST_IP:$((PORT + 500))" "$2" 0 \
		"$TMO") || res='{"completed": false}'
	sleep 4
	st=$(stream_stop)
	kill "$rpid" 2>/dev/null || true
	gaps=$(python3 - "$res" "$d/serial.log" "$BT" <<'PY'
import json, subprocess, sys
r = json.loads(sys.argv[1])
g = subprocess.run(["python3", sys.argv[3], "gaps", sys.argv[2], str(r.get("t0", 0)),
                    str(r.get("t1", 0))], capture_output=True, text=True).stdout
print(g.strip() or "{}")
PY
)
	q_stop "$d"
	report "$1" "$res" "$st" "$gaps"
}
: >"$OUT/net-moves.jsonl"
for i in $(seq "$BENCH_RUNS"); do
	gw_start
	gw_move 1 2 "godwit pre-copy (default policy)" >>"$OUT/net-moves.jsonl"
	gw_move 2 1 "godwit --postcopy" --postcopy >>"$OUT/net-moves.jsonl"
	gwa rm -f nb >/dev/null 2>&1 || true
	q_move "QEMU defaults" 0 "$i" >>"$OUT/net-moves.jsonl"
	q_move "QEMU max-bandwidth $((TUNED_BW / 1073741824)) GiB/s" "$TUNED_BW" "$i" >>"$OUT/net-moves.jsonl"
done

echo
echo "### Network: throughput client→guest, $BYTES_MIB MiB over one TCP connection ($(accel), median of $BENCH_RUNS)"
echo
echo "| path | MiB/s | of the veth's |"
echo "|---|---|---|"
python3 - "$OUT/net-tput.txt" <<'PY'
import statistics, sys
v = {}
for line in open(sys.argv[1]):
    w, x = line.split()
    v.setdefault(w, []).append(float(x))
m = {w: statistics.median(x) for w, x in v.items()}
names = {"veth": "segment → host namespace, same bridge and veth (the limit)",
         "godwit": "segment → godwit container (tap, virtio-net)",
         "anchor": "segment → bare QEMU guest (tap, virtio-net)"}
for w in ("veth", "godwit", "anchor"):
    if w in m:
        print("| %s | %.1f | %.0f%% |" % (names[w], m[w], 100 * m[w] / m["veth"]))
PY
echo
echo "### Network: the pause a client sees during a move (one TCP connection to an echo server in the guest, 100 lines/s each way; $(accel), median of $BENCH_RUNS)"
echo
echo "| who | completed | stream intact (no reset, nothing lost) | client-seen max stall ms | heartbeat pause ms (guest ran again) | world saw it again ms | QEMU downtime ms | total ms |"
echo "|---|---|---|---|---|---|---|---|"
python3 - "$OUT/net-moves.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
order = []
for r in rs:
    if r["who"] not in order:
        order.append(r["who"])
def med(pool, k):
    v = [r[k] for r in pool if isinstance(r.get(k), (int, float))]
    return "%.0f" % statistics.median(v) if v else "-"
for who in order:
    p = [r for r in rs if r["who"] == who]
    ok = [r for r in p if r.get("completed")]
    print("| %s | %d/%d | %d/%d | %s | %s | %s | %s | %s |" % (
        who, len(ok), len(p), sum(1 for r in p if r.get("stream_ok")), len(p),
        med(ok, "stall_ms"), med(ok, "pause_ms"), med(ok, "world_pause_ms"),
        med(ok, "downtime_ms"), med(ok, "total_ms")))
bad = [r for r in rs if not r.get("stream_ok")]
for r in bad:
    print("\n- %s: stream %s" % (r["who"], r.get("stream_error")))
PY
