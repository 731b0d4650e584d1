#!/usr/bin/env bash
# Live-migration benchmark (issue 4): a 1 GiB guest running `gwtest heartbeat` (a line every
# 1 ms) under three workloads: idle; `gwtest memtest 256 1270` (256 MiB rewritten every ~1.3 s,
# ~200 MiB/s); `gwtest memtest 256 1` (flat out). For each, BENCH_RUNS runs (default 3) of:
#   godwit   `godwit migrate --json` with its default policy (pre-copy, switching to post-copy
#            only when it will not converge)
#   qemu     bare QEMU with its defaults (128 MiB/s, 300 ms), driven by its events (bt.py)
#   tuned    the same with max-bandwidth raised to BENCH_TUNED_BW (default 10 GiB/s)
# and, to compare with an earlier build in the same run (BENCH_KINDS="gwbase godwit"):
#   gwbase   as godwit, with the godwit binary BENCH_BASE (its shim and kit beside it; the
#            table names it by BENCH_BASE_REV)
# and, to see what TLS costs (BENCH_KINDS="godwit gwtls"):
#   gwtls    `godwit migrate --json --tls-dir` into an `incoming --tls-dir` (docs/security.md;
#            certificates made for the run by tests/lib/tlscerts.sh)
# and, for the post-copy rows (BENCH_KINDS="godwit gwpc gwnpc qpc qac"):
#   gwpc     `godwit migrate --postcopy`          gwnpc  `godwit migrate --no-postcopy`
#   qpc      bare QEMU, postcopy-ram on both, migrate-start-postcopy when dirty-sync-count = 2
#   qac      bare QEMU, auto-converge            (both at max-bandwidth BENCH_TUNED_BW)
#   gwmfd    `godwit migrate --channels 2` (QEMU's multifd: 2 channels and the main one, each
#            relayed over a connection of the move; pre-copy only)
# and, to see whether QEMU's extra channels pay on this machine (BENCH_KINDS="tuned qmfd qpc qpcp"):
#   qmfd     bare QEMU, multifd (QEMU's default 2 channels)
#   qpcp     as qpc, with postcopy-preempt (page requests on a channel of their own)
# and, to see how the anchor's harness moves its figures (BENCH_KINDS="godwit qemu qlv qpoll
# tuned tpoll"), the destination started with -S:
#   qlv      QEMU defaults, the destination resumed at the `completed` event (as libvirt does)
#   qpoll    QEMU defaults, the harness this bench had before issue 17 (query-migrate polled
#            every 100 ms, no events, the destination resumed after a poll saw `completed`)
#   tpoll    as qpoll at max-bandwidth BENCH_TUNED_BW
# BENCH_KINDS picks the kinds (default "godwit qemu tuned"); each run moves one guest of every
# kind, run i starting with the i-th kind (rotated), each godwit kind with a container name of
# its own. Every run also records whether the destination guest is healthy: no kernel
# BUG/Oops/corruption/panic on its console, heartbeat lines still arriving 5 s after the
# migration ended, no memtest CORRUPT line.
# Three figures for the pause: "guest frozen" (the step in the guest's own clock), "guest ran
# again" (the largest gap between consecutive heartbeat lines around the switch, on host
# arrival times: godwit `logs -t`, QEMU its serial console sockets read by bench/bt.py reader)
# and "world saw it again" (the same on the times the lines reached the world: godwit's
# destination holds its guest's output until COMMIT and says when it released it, the
# migrate result's held_output_released; QEMU's output is never held, so both are equal).
# CPU per move: bt.py cpuwatch samples every 10 ms the run time of each thread of the move's
# processes on both hosts (godwit: its shims, CLI and QEMUs; the anchor: its two QEMUs) and
# bt.py cpusum takes what they ran between the start and the end of the move (godwit: the
# whole `migrate` command; the anchor: from `migrate` to `completed`), split into the vCPUs,
# QEMU's migration threads, QEMU's other threads and godwit's own processes.
# Each godwit run leaves its heartbeat log (hb-*), both shims' logs (shim-src-*, shim-dst-*:
# with GODWIT_MIG_TRACE set, the move step by step), both QEMUs' logs (qemu-*), the source's
# console and the CPU samples (cpu-*.json: run time and run-queue wait per thread) in $OUT.
# Usage: bench/migrate.sh [WORKLOAD...] (idle dirty200 flatout).
source "$(dirname "$0")/lib.sh"
MEM=1024
TMO=${BENCH_MIG_TIMEOUT:-60}
TUNED_BW=${BENCH_TUNED_BW:-10737418240}
PORT=${BENCH_PORT:-7390}
SETTLE=${BENCH_SETTLE:-4} # s of workload before migrating

workload_mem() { case $1 in idle) echo 0 ;; dirty200) echo 256 ;; flatout) echo 256 ;; esac; }
workload_ms() { case $1 in idle) echo 0 ;; dirty200) echo 1270 ;; flatout) echo 1 ;; esac; }

anchor_build
images_build
net_setup
two_roots q
trap roots_cleanup EXIT
for r in "$RA" "$RB"; do "$G" --root "$r" load -i "$IMGS/gwtest-oci.tar" >/dev/null; done

# kernel trouble on a destination console
KBAD='BUG:|Oops|corruption|Kernel panic|NX-protected'

# the CPU watcher (bt.py cpuwatch) has sampled every thread once
cpuwatch_ready() { for _ in $(seq 100); do [ -e "$1.ready" ] && return 0; sleep 0.05; done; }

# One godwit run: prints one JSON line (migrate's result + completed + pause figures)
godwit_run() { # WORKLOAD N [MIGRATE-FLAG]
	# a name of its own per kind: kinds of one run index once shared one, and each move then
	# followed the removal of a container of the same name (and overwrote its logs)
	local w=$1 n=gw-$1-$2-${GW_KIND:-godwit} mem ms cmd t0 t1 res flag=${3:-}
	mem=$(workload_mem "$w") ms=$(workload_ms "$w")
	cmd="/bin/gwtest heartbeat"
	[ "$mem" -gt 0 ] && cmd="/bin/gwtest memtest $mem $ms & exec /bin/gwtest heartbeat"
	in_src "$G" --root "$RA" run -d -m "${MEM}M" --name "$n" --entrypoint /bin/sh gwtest \
		-c "$cmd" >/dev/null
	check_same_qemu "$(pgrep -f -- "qemu-system.*$RA/containers/$n/" | head -1)"
	for _ in $(seq 200); do "$G" --root "$RA" logs "$n" | grep -q '^hb ' && break; sleep 0.1; done
	sleep "$SETTLE"
	local sec=(--insecure) tls=()
	[ "${GW_TLS:-0}" = 1 ] && sec=(--tls-dir "$WD/tls") && tls=(--tls-dir "$WD/tls")
	python3 "$BT" cpuwatch "$WD/$n.cpu" "$RA" "$RB" &
	local wpid=$!
	cpuwatch_ready "$WD/$n.cpu"
	in_dst "$G" --root "$RB" incoming --name "$n" --listen "tcp:$DST_IP:$PORT" "${sec[@]}" \
		>/dev/null
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	res=$(in_src "$G" --root "$RA" migrate --json $flag "${tls[@]}" "$n" "tcp:$DST_IP:$PORT" \
		2>"$WD/err") || true
	t1=$(date +%s.%N)
	sleep 0.1
	kill -TERM "$wpid"
	wait "$wpid" || true
	sleep 6
	"$G" --root "$RB" logs -t "$n" >"$WD/$n.log" 2>/dev/null ||
		"$G" --root "$RA" logs -t "$n" >"$WD/$n.log"
	local gaps corrupt kbad cpu
	local held rel
	held=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("held_output_first_rx",""))' "$res" 2>/dev/null)
	rel=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("held_output_released",""))' "$res" 2>/dev/null)
	gaps=$(python3 "$BT" gaps "$WD/$n.log" "$t0" "$t1" "${held:--}" "${rel:--}")
	cpu=$(python3 "$BT" cpusum "$WD/$n.cpu" "$t0" "$t1")
	corrupt=$(grep -c CORRUPT "$WD/$n.log" || true)
	kbad=$(grep -E -c "$KBAD" "$RB/containers/$n/console.log" 2>/dev/null || true)
	[ -f "$RB/containers/$n/console.log" ] || kbad=-1
	cp "$RB/containers/$n/console.log" "$OUT/console-$n${flag// /}.log" 2>/dev/null || true
	cp "$WD/$n.log" "$OUT/hb-$n${flag// /}.log" 2>/dev/null || true
	cp "$RA/containers/$n/shim.log" "$OUT/shim-src-$n${flag// /}.log" 2>/dev/null || true
	cp "$RA/containers/$n/console.log" "$OUT/console-src-$n${flag// /}.log" 2>/dev/null || true
	cp "$RA/containers/$n/qemu.log" "$OUT/qemu-src-$n${flag// /}.log" 2>/dev/null || true
	cp "$RB/containers/$n/qemu.log" "$OUT/qemu-dst-$n${flag// /}.log" 2>/dev/null || true
	cp "$WD/$n.cpu" "$OUT/cpu-$n${flag// /}.json" 2>/dev/null || true
	cp "$RB/containers/$n/shim.log" "$OUT/shim-dst-$n${flag// /}.log" 2>/dev/null || true
	"$G" --root "$RB" rm -f "$n" >/dev/null 2>&1 || true
	"$G" --root "$RA" rm -f "$n" >/dev/null 2>&1 || true
	python3 - "$res" "$gaps" "$corrupt" "$t0" "$t1" "$(tr '\n' ' ' <"$WD/err")" "$kbad" "$cpu" <<'PY'
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    r = {}
r["completed"] = "total_ms" in r
if not r["completed"]:
    r["total_ms"] = round((float(sys.argv[5]) - float(sys.argv[4])) * 1000)
    r["error"] = sys.argv[6].strip()
r.update(json.loads(sys.argv[2]))
r["corrupt_lines"] = int(sys.argv[3])
r["kernel_bad"] = int(sys.argv[7] or 0)
r.update(json.loads(sys.argv[8] or "{}"))
r["actions"] = "; ".join(a if isinstance(a, str) else json.dumps(a) for a in r.get("actions", []))
print(json.dumps(r))
PY
}

# One bare-QEMU run: two QEMUs with the same command line, the destination -incoming defer
# without -S (it resumes the moment its state is in, as godwit's destination does)
qemu_run() { # WORKLOAD N BANDWIDTH(0 = QEMU's default) [CAPS [PC [MODE]]]
	# (no comma in the directory: QEMU's option syntax would split the socket paths there)
	local caps=${4:--}
	local w=$1 d=$WD/q-$1-$2-$3-${caps//,/+}-${5:-0}-${6:-events} mem ms spid dpid rpid res
	local hold=() # MODE libvirt or poll: the destination waits for `cont` (-S)
	[ "${6:-events}" = events ] || hold=(-S)
	mem=$(workload_mem "$w") ms=$(workload_ms "$w")
	mkdir -p "$d"
	local common
	# shellcheck disable=SC2207
	common=($(q_base "$MEM") -append "$Q_APPEND BENCH=mig MEM=$mem MS=$ms")
	in_src "${common[@]}" -chardev "socket,id=s0,path=$d/src.ser,server=on,wait=off" \
		-serial chardev:s0 -qmp "unix:$d/src.qmp,server=on,wait=off" >"$d/src.out" 2>&1 &
	spid=$!
	in_dst "${common[@]}" -chardev "socket,id=s0,path=$d/dst.ser,server=on,wait=off" \
		-serial chardev:s0 -qmp "unix:$d/dst.qmp,server=on,wait=off" \
		-incoming defer "${hold[@]}" >"$d/dst.out" 2>&1 &
	dpid=$!
	python3 "$BT" reader "$d/serial.log" "$d/src.ser" "$d/dst.ser" &
	rpid=$!
	for _ in $(seq 300); do grep -q ' hb ' "$d/serial.log" 2>/dev/null && break; sleep 0.1; done
	sleep "$SETTLE"
	python3 "$BT" cpuwatch "$d/cpu.json" "$d/src." "$d/dst." &
	local wpid=$!
	cpuwatch_ready "$d/cpu.json"
	res=$(python3 "$BT" qmpmig "$d/src.qmp" "$d/dst.qmp" "tcp:$DST_IP:$PORT" "$3" 0 "$TMO" \
		"${4:--}" "${5:-0}" "${6:-events}") ||
		res='{"completed": false, "status": "error"}'
	kill -TERM "$wpid"
	wait "$wpid" || true
	sleep 6
	python3 "$BT" qmpcmd "$d/src.qmp" quit
	python3 "$BT" qmpcmd "$d/dst.qmp" quit
	kill "$rpid" 2>/dev/null || true
	for p in $spid $dpid; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	local gaps
	cp "$d/serial.log" "$OUT/serial-$(basename "$d").log" 2>/dev/null || true
	gaps=$(python3 - "$res" "$d/serial.log" "$BT" "$d/dst.out" "$d/cpu.json" <<'PY'
import json, re, subprocess, sys
r = json.loads(sys.argv[1])
t0, t1 = r.get("t0", 0), r.get("t1", 0)
g = subprocess.run(["python3", sys.argv[3], "gaps", sys.argv[2], str(t0), str(t1)],
                   capture_output=True, text=True).stdout
r.update(json.loads(g) if g.strip() else {})
c = subprocess.run(["python3", sys.argv[3], "cpusum", sys.argv[5], str(t0), str(t1)],
                   capture_output=True, text=True).stdout
r.update(json.loads(c) if c.strip() else {})
r["corrupt_lines"] = open(sys.argv[2], errors="replace").read().count("CORRUPT")
# the destination's console: reader lines "TIME 1 LINE", plus QEMU's own stderr
bad = re.compile(r"BUG:|Oops|corruption|Kernel panic|NX-protected")
dst = [ln for ln in open(sys.argv[2], errors="replace") if ln.split(" ", 2)[1:2] == ["1"]]
dst += open(sys.argv[4], errors="replace").readlines()
r["kernel_bad"] = sum(1 for ln in dst if bad.search(ln))
print(json.dumps(r))
PY
)
	echo "$gaps"
}
export KBAD
export -f godwit_run qemu_run cpuwatch_ready workload_mem workload_ms check_same_qemu in_src in_dst
export RA RB WD G BT MEM TMO PORT SETTLE DST_IP SRC_IP BENCH_NET NS_SRC NS_DST KIT OUT \
	Q_MACHINE Q_ACCEL Q_CPU Q_APPEND
export -f q_base

# certificates for the gwtls kind: the destination's names its address
if [[ " ${BENCH_KINDS:-} " == *" gwtls "* ]]; then
	. "$(dirname "$0")/../tests/lib/tlscerts.sh"
	tls_certs "$WD/tls" "bench CA" "IP:$DST_IP" || { echo "openssl failed" >&2; exit 1; }
fi

# The link's own throughput, host to host (iperf3, 3 s)
link() {
	in_dst iperf3 -s -1 -p $((PORT + 1)) >/dev/null 2>&1 &
	sleep 0.5
	in_src iperf3 -c "$DST_IP" -p $((PORT + 1)) -t 3 -J |
		python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8 / 2**30))'
	wait
}
export -f link
LINK=$(vm_job 30 bash -c link) || LINK=n/a

WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(idle dirty200 flatout)
read -r -a KINDS <<<"${BENCH_KINDS:-godwit qemu tuned}"
# one run of kind K: the command vm_job runs
run_cmd() { # KIND WORKLOAD N
	case $1 in
	godwit) echo "GW_KIND=$1 godwit_run $2 $3" ;;
	gwtls) echo "GW_KIND=$1 GW_TLS=1 godwit_run $2 $3" ;;
	gwbase) echo "GW_KIND=$1 G=$BENCH_BASE godwit_run $2 $3" ;;
	gwpc) echo "GW_KIND=$1 godwit_run $2 $3 --postcopy" ;;
	gwnpc) echo "GW_KIND=$1 godwit_run $2 $3 --no-postcopy" ;;
	gwmfd) echo "GW_KIND=$1 godwit_run $2 $3 '--channels 2'" ;;
	qemu) echo "qemu_run $2 $3 0" ;;
	tuned) echo "qemu_run $2 $3 $TUNED_BW" ;;
	qpc) echo "qemu_run $2 $3 $TUNED_BW postcopy-ram 1" ;;
	qac) echo "qemu_run $2 $3 $TUNED_BW auto-converge 0" ;;
	qmfd) echo "qemu_run $2 $3 $TUNED_BW multifd 0" ;;
	qpcp) echo "qemu_run $2 $3 $TUNED_BW postcopy-ram,postcopy-preempt 1" ;;
	qlv) echo "qemu_run $2 $3 0 - 0 libvirt" ;;
	qpoll) echo "qemu_run $2 $3 0 - 0 poll" ;;
	tpoll) echo "qemu_run $2 $3 $TUNED_BW - 0 poll" ;;
	esac
}
for w in "${WORKLOADS[@]}"; do
	for k in "${KINDS[@]}"; do : >"$OUT/mig-$w-$k.jsonl"; done
	for i in $(seq "$BENCH_RUNS"); do
		# run i starts with kind i (rotated): no kind always moves first, or always second
		r=$(((i - 1) % ${#KINDS[@]}))
		for k in "${KINDS[@]:r}" "${KINDS[@]:0:r}"; do
			vm_job $((TMO + 90)) bash -c "$(run_cmd "$k" "$w" "$i")" \
				>>"$OUT/mig-$w-$k.jsonl" || echo "$k $w run $i: failed" >&2
		done
	done
done

echo
echo "### Live migration, 1 GiB guest ($(accel), $BENCH_NET: link $LINK GiB/s by iperf3," \
	"median of $BENCH_RUNS runs, completed runs only for times/bytes)"
echo
echo "| workload | who | completed <= ${TMO}s | total ms | from QEMU's migrate ms | downtime ms (reported) |" \
	"guest frozen ms | guest ran again: pause ms (arrival) | world saw it again: pause ms (release) | worst gap after the switch ms | guest healthy after (console clean, heartbeat +5 s, no CORRUPT) | baseline p99 gap ms | baseline's largest gap (4.5 s before the move) ms | MiB sent | rounds | dirty MiB/s (query-migrate) |" \
	"CPU ms in the move, both hosts (the median run): all = vCPUs + QEMU's migration threads + QEMU's other threads + godwit's shims and CLI |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
	for k in "${KINDS[@]}"; do
		f=$OUT/mig-$w-$k.jsonl
		python3 - "$f" "$w" "$k" "$TUNED_BW" <<'PY'
import json, os, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ok = [r for r in rs if r.get("completed")]
def med(key, pool):
    v = [r[key] for r in pool if isinstance(r.get(key), (int, float))]
    return statistics.median(v) if v else None
def fmt(v, f="%.0f"):
    return f % v if v is not None else "-"
bw = "%.0f GiB/s" % (int(sys.argv[4]) / 2**30)
# godwit's VM has a virtio disk, its agent's virtio-serial port and the free-page-hint balloon
# (docs/qemu.md); the anchors' VMs have a serial console and no virtio device: a destination
# loads each virtio device's state while the guest is frozen
who = {"godwit": "godwit (default policy; its VM has a virtio disk, agent port and free-page-hint "
                 "balloon, the anchors' none)",
       "gwtls": "godwit (default policy), inside TLS (--tls-dir)",
       "gwbase": "godwit (default policy) before, at " + os.environ.get("BENCH_BASE_REV", "BENCH_BASE"), "qemu": "QEMU defaults (events, dst without -S)",
       "tuned": "QEMU, max-bandwidth " + bw,
       "gwpc": "godwit --postcopy", "gwnpc": "godwit --no-postcopy (pre-copy only)",
       "gwmfd": "godwit --channels 2 (multifd, pre-copy only)",
       "qpc": "QEMU post-copy after pass 1, " + bw,
       "qac": "QEMU auto-converge, " + bw,
       "qmfd": "QEMU multifd (2 channels), " + bw,
       "qpcp": "QEMU post-copy + postcopy-preempt after pass 1, " + bw,
       "qlv": "QEMU defaults, destination resumed as libvirt does (-S, cont at completed)",
       "qpoll": "QEMU defaults, the old harness (-S, polled every 100 ms)",
       "tpoll": "QEMU, max-bandwidth " + bw + ", the old harness (-S, polled every 100 ms)",
       }[sys.argv[3]]
if sys.argv[3].startswith(("godwit", "gw")) and rs:
    # the policy's first choice (docs/migration-policy.md): say how often the hints were used
    n = sum(1 for r in rs if '"free-page-hints"' in str(r.get("actions", "")))
    who += " [free-page hints in %d/%d moves]" % (n, len(rs))
if not rs:
    sys.exit(0)
b = med("bytes", ok)
dirty = med("dirty_mibs", rs) if sys.argv[3] in ("qemu", "tuned", "qpc", "qac", "qlv", "qpoll", "tpoll") else None
healthy = sum(1 for r in rs if r.get("after5_lines", 0) > 0 and r.get("kernel_bad", 1) == 0
              and r.get("corrupt_lines", 1) == 0)
# godwit's total runs from its request (connection, destination QEMU started, disk mirror);
# the anchor's destination QEMU was started beforehand, so its total runs from `migrate`, as
# does QEMU's own total-time that godwit reports (qemu_total_ms)
for r in ok:
    r.setdefault("qemu_total_ms", r.get("total_ms"))
cpu = "-"
cpus = sorted((r for r in ok if isinstance(r.get("cpu_ms"), (int, float))), key=lambda r: r["cpu_ms"])
if cpus:  # the run with the median total, and its split
    m = cpus[(len(cpus) - 1) // 2]
    cpu = "%s = %s + %s + %s + %s" % tuple(fmt(m.get(k)) for k in (
        "cpu_ms", "cpu_vcpu_ms", "cpu_mig_ms", "cpu_qemu_ms", "cpu_godwit_ms"))
print("| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s | %s | %s | %s | %s |" % (
    sys.argv[2], who, len(ok), len(rs), fmt(med("total_ms", ok)), fmt(med("qemu_total_ms", ok)),
    fmt(med("downtime_ms", ok)), fmt(med("frozen_ms", ok), "%.1f"),
    fmt(med("pause_ms", ok), "%.1f"), fmt(med("world_pause_ms", ok), "%.1f"),
    fmt(med("post_gap_ms", ok), "%.1f"), healthy, len(rs), fmt(med("baseline_p99_ms", rs), "%.1f"),
    fmt(med("baseline_max_ms", rs), "%.1f"),
    fmt(b / 2**20 if b is not None else None), fmt(med("rounds", ok)), fmt(dirty), cpu))
PY
	done
done
echo
echo "Per run (kind: completed total_ms pause/post-gap ms, kernel_bad, after5 lines, CORRUPT, actions | error):"
for w in "${WORKLOADS[@]}"; do
	for k in "${KINDS[@]}"; do
		python3 - "$OUT/mig-$w-$k.jsonl" "$w $k" <<'PY'
import json, sys
for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")):
    print("- %s: %s %s ms, cpu %s ms (vcpu %s, mig %s, qemu %s, godwit %s), pause %s (world %s, held %s) / %s, kernel_bad %s, after5 %s, CORRUPT %s, %s | %s" % (
        sys.argv[2], r.get("completed"), r.get("total_ms"), r.get("cpu_ms"), r.get("cpu_vcpu_ms"),
        r.get("cpu_mig_ms"), r.get("cpu_qemu_ms"), r.get("cpu_godwit_ms"), r.get("pause_ms"),
        r.get("world_pause_ms"), r.get("held_ms"), r.get("post_gap_ms"), r.get("kernel_bad"), r.get("after5_lines"),
        r.get("corrupt_lines"), r.get("actions") or r.get("status") or "-",
        r.get("error", "")[:200]))
PY
	done
done
