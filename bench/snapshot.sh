#!/usr/bin/env bash
# Snapshot/restore benchmark (issues 3 and 11): a 1 GiB guest, idle or with 512 MiB touched,
# is snapshotted to a file and restored as a new VM. Measured: the snapshot command's time and
# the guest's pause, the file's size, and restore from command start to (a) the container
# running and (b) the guest's next output line. Beside it, bare QEMU with the same kernel,
# machine, CPU, TCG options and memory, driven over QMP the way godwit drives it (src/shim/
# mig_snapshot.c): stop, capabilities mapped-ram + multifd (2 channels), no bandwidth cap, the file
# handed over with add-fd, migrate to "file:/dev/fdset/N,offset=4096", fsync, cont; then a new
# QEMU with -incoming defer, the same capabilities, migrate-incoming from the same URI, cont.
# What godwit adds is its own: the container's config, disk and log, the integrity check.
# BENCH_RUNS runs (default 3) of each, alternated; prints one markdown table of medians.
# Usage: bench/snapshot.sh [WORKLOAD...] (idle mem512).
source "$(dirname "$0")/lib.sh"
MEM=1024
SETTLE=${BENCH_SETTLE:-2} # s the guest runs after its workload is up, before the snapshot
TOUCH_MS=600000           # memtest's pause after writing its buffer: touch once, then sleep

# Both guests run `gwtest heartbeat` (a line every 1 ms, a few KiB of memory) as the probe for
# "next output line"; mem512 adds `gwtest memtest 512 600000`, which writes 512 MiB once.
workload_mem() { case $1 in idle) echo 0 ;; mem512) echo 512 ;; *) return 1 ;; esac; }

anchor_build
images_build
two_roots snap /var/tmp # snapshot files: on disk, not on a tmpfs
trap roots_cleanup EXIT
for r in "$RA" "$RB"; do "$G" --root "$r" load -i "$IMGS/gwtest-oci.tar" >/dev/null; done

# seconds since the epoch, with nanoseconds
now() { date +%s.%N; }
# drop NAME from both roots (after a failed step too)
gw_drop() { for r in "$RA" "$RB"; do "$G" --root "$r" rm -f "$1" >/dev/null 2>&1 || true; done; }

# One godwit run: snapshot on root A, remove the source, restore on root B; one JSON line.
godwit_run() { # WORKLOAD N
	local w=$1 n=snap-$1-$2 mem cmd t0 t1 t2 t3 res rc=0
	mem=$(workload_mem "$w")
	cmd="exec /bin/gwtest heartbeat"
	[ "$mem" -gt 0 ] && cmd="/bin/gwtest memtest $mem $TOUCH_MS & exec /bin/gwtest heartbeat"
	"$G" --root "$RA" run -d -m "${MEM}M" --name "$n" --entrypoint /bin/sh gwtest -c "$cmd" \
		>/dev/null
	check_same_qemu "$(pgrep -f -- "qemu-system.*$RA/containers/$n/" | head -1)"
	local want='^hb '
	[ "$mem" -gt 0 ] && want='^memtest iter=0 '
	for _ in $(seq 600); do "$G" --root "$RA" logs "$n" | grep -q "$want" && break; sleep 0.1; done
	"$G" --root "$RA" logs "$n" | grep -q "$want" || {
		echo "$n: no '$want' line" >&2
		gw_drop "$n"
		return 1
	}
	"$G" --root "$RA" logs "$n" | grep -q CORRUPT && {
		echo "$n: memtest CORRUPT" >&2
		gw_drop "$n"
		return 1
	}
	sleep "$SETTLE"
	t0=$(now)
	res=$("$G" --root "$RA" snapshot --json "$n" "$WD/$n.snap") || rc=$?
	t1=$(now)
	"$G" --root "$RA" rm -f "$n" >/dev/null
	[ "$rc" -eq 0 ] || { echo "$n: snapshot failed" >&2; return 1; }
	local size alloc
	size=$(stat -c %s "$WD/$n.snap")
	alloc=$(($(stat -c %b "$WD/$n.snap") * $(stat -c %B "$WD/$n.snap")))
	t2=$(now)
	"$G" --root "$RB" restore "$WD/$n.snap" --name "$n" >/dev/null || rc=$?
	t3=$(now)
	[ "$rc" -eq 0 ] || {
		echo "$n: restore failed" >&2
		gw_drop "$n"
		return 1
	}
	# the first line that arrived after the restore command started (logs -t: arrival times)
	local first=""
	for _ in $(seq 300); do
		first=$("$G" --root "$RB" logs -t "$n" | python3 -c '
import sys
from datetime import datetime, timezone
t2 = float(sys.argv[1])
for ln in sys.stdin:
    tok = ln.split(" ", 1)[0].rstrip("Z")
    try:
        base, frac = tok.split(".")
        t = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        t = t.timestamp() + float("0." + frac)
    except ValueError:
        continue
    if t > t2:
        print("%.6f" % t)
        break' "$t2")
		[ -n "$first" ] && break
		sleep 0.1
	done
	local corrupt
	corrupt=$("$G" --root "$RB" logs "$n" | grep -c CORRUPT || true)
	"$G" --root "$RB" rm -f "$n" >/dev/null
	rm -f "$WD/$n.snap"
	python3 - "$res" "$size" "$t0" "$t1" "$t2" "$t3" "${first:-0}" "$corrupt" "$alloc" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
size, t0, t1, t2, t3, first = (float(x) for x in sys.argv[2:8])
print(json.dumps({
    "snap_ms": round((t1 - t0) * 1000), "snap_shim_ms": r.get("ms"),
    "paused_ms": r.get("paused_ms"), "mib": round(float(sys.argv[9]) / 2**20, 1),
    "size_mib": round(size / 2**20, 1),
    "restore_run_ms": round((t3 - t2) * 1000),
    "restore_out_ms": round((first - t2) * 1000) if first > 0 else None,
    "corrupt_lines": int(sys.argv[8]),
}))
PY
}

# One bare-QEMU run, the whole of it in python: QMP and the serial console over unix sockets.
qemu_run() { # WORKLOAD N
	local w=$1 d=$WD/q-$1-$2 mem
	mem=$(workload_mem "$w")
	mkdir -p "$d"
	# shellcheck disable=SC2046
	python3 - "$d" "$mem" "$SETTLE" $(q_base "$MEM") -append \
		"$Q_APPEND BENCH=mig MEM=$mem MS=$TOUCH_MS" <<'PY'
import json, os, socket, subprocess, sys, threading, time

d, mem, settle, qemu = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
snap = os.path.join(d, "q.snap")

def connect(path, timeout=30):
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.005)

class Qmp:
    def __init__(self, path):
        self.sock = connect(path)
        self.f = self.sock.makefile("rwb")
        self.f.readline()
        self.cmd("qmp_capabilities")
    def cmd(self, name, **args):
        m = {"execute": name}
        if args:
            m["arguments"] = args
        self.f.write(json.dumps(m).encode() + b"\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"]["desc"]))
            if "return" in r:
                return r["return"]

class Serial:
    """Every complete console line with its host arrival time."""
    def __init__(self, path):
        self.s = connect(path)
        self.lines = []
        threading.Thread(target=self.run, daemon=True).start()
    def run(self):
        buf = b""
        while True:
            data = self.s.recv(65536)
            if not data:
                return
            now = time.time()
            buf += data
            *done, buf = buf.split(b"\n")
            self.lines += [(now, ln.decode("utf-8", "replace")) for ln in done]
    def wait(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, ln in list(self.lines):
                if pred(t, ln):
                    return t
            time.sleep(0.002)
        return None

def start(tag, extra):
    ser, qmp = os.path.join(d, tag + ".ser"), os.path.join(d, tag + ".qmp")
    p = subprocess.Popen(qemu + ["-chardev", "socket,id=s0,path=%s,server=on,wait=off" % ser,
                                 "-serial", "chardev:s0",
                                 "-qmp", "unix:%s,server=on,wait=off" % qmp] + extra,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, tag + ".err"), "w"))
    return p, Qmp(qmp), Serial(ser)

def stop(p, q):
    try:
        q.cmd("quit")
    except (OSError, RuntimeError, ValueError):
        pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()

OFF = 4096  # where godwit's STATE section starts
CAPS = [{"capability": c, "state": True} for c in ("mapped-ram", "multifd")]

def file_caps(q, on):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": c["capability"], "state": on} for c in CAPS])
    if on:
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 2**62, "multifd-channels": 2})

def add_fd(q, fd):
    """fd into a QEMU fd set (add-fd over the monitor socket); the file: URI naming it"""
    socket.send_fds(q.sock, [json.dumps({"execute": "add-fd"}).encode() + b"\n"], [fd])
    while True:
        r = json.loads(q.f.readline())
        if "error" in r:
            raise RuntimeError("add-fd: %s" % r["error"]["desc"])
        if "return" in r:
            return r["return"]["fdset-id"], "file:/dev/fdset/%d,offset=%d" % (
                r["return"]["fdset-id"], OFF)

def wait_migration(q, what):
    while True:
        r = q.cmd("query-migrate")
        if r.get("status") == "completed":
            return
        if r.get("status") in ("failed", "cancelled"):
            sys.exit("anchor: %s %s: %s" % (what, r.get("status"), r.get("error-desc")))
        time.sleep(0.002)

procs = []
try:
    p, q, s = start("src", [])
    procs.append(p)
    want = "memtest iter=0 " if mem > 0 else "hb "
    if s.wait(lambda t, ln: ln.startswith(want), 60) is None:
        sys.exit("anchor: no %r line" % want)
    time.sleep(settle)
    # the file exists before, as godwit's does (its header and STATE's section header)
    fd = os.open(snap, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.pwrite(fd, bytes(OFF), 0)
    wfd = os.open(snap, os.O_WRONLY)  # an fd set's access mode must match QEMU's open
    t0 = time.time()
    q.cmd("stop")
    file_caps(q, True)
    fdset, uri = add_fd(q, wfd)
    q.cmd("migrate", uri=uri)
    wait_migration(q, "migrate to file")
    tf = time.time()
    q.cmd("remove-fd", **{"fdset-id": fdset})
    file_caps(q, False)
    os.fsync(fd)
    tfs = time.time()
    q.cmd("cont")
    t1 = time.time()
    os.close(wfd)
    stop(p, q)
    st = os.fstat(fd)
    os.close(fd)

    t2 = time.time()
    p, q, s = start("dst", ["-incoming", "defer"])
    procs.append(p)
    rfd = os.open(snap, os.O_RDONLY)
    file_caps(q, True)
    fdset, uri = add_fd(q, rfd)
    q.cmd("migrate-incoming", uri=uri)
    wait_migration(q, "incoming")
    q.cmd("remove-fd", **{"fdset-id": fdset})
    file_caps(q, False)
    q.cmd("cont")
    t3 = time.time()
    os.close(rfd)
    first = s.wait(lambda t, ln: t > t2 and ln.startswith("hb "), 30)
    corrupt = sum("CORRUPT" in ln for _, ln in s.lines)
    stop(p, q)
    print(json.dumps({
        "snap_ms": round((t1 - t0) * 1000), "paused_ms": round((t1 - t0) * 1000),
        "migrate_ms": round((tf - t0) * 1000), "fsync_ms": round((tfs - tf) * 1000),
        "mib": round(st.st_blocks * 512 / 2**20, 1), "size_mib": round(st.st_size / 2**20, 1),
        "restore_run_ms": round((t3 - t2) * 1000),
        "restore_out_ms": round((first - t2) * 1000) if first else None,
        "corrupt_lines": corrupt,
    }))
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.path.exists(snap):
        os.unlink(snap)
PY
}
export -f godwit_run qemu_run workload_mem check_same_qemu now q_base gw_drop
export RA RB WD G MEM SETTLE TOUCH_MS KIT OUT Q_MACHINE Q_ACCEL Q_CPU Q_APPEND

WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(idle mem512)
for w in "${WORKLOADS[@]}"; do
	workload_mem "$w" >/dev/null || { echo "unknown workload $w (idle, mem512)" >&2; exit 2; }
	for k in godwit qemu; do : >"$OUT/snap-$w-$k.jsonl"; done
	for i in $(seq "$BENCH_RUNS"); do
		vm_job 240 bash -c "godwit_run $w $i" >>"$OUT/snap-$w-godwit.jsonl" || {
			echo "godwit $w run $i: failed" >&2
			gw_drop "snap-$w-$i" # after a timeout
		}
		vm_job 240 bash -c "qemu_run $w $i" >>"$OUT/snap-$w-qemu.jsonl" ||
			echo "qemu $w run $i: failed" >&2
	done
done

echo
echo "### Snapshot and restore, 1 GiB guest ($(accel), median of $BENCH_RUNS runs; files on" \
	"$(df --output=fstype "$WD" | tail -1 | tr -d ' '), in the page cache when restored)"
echo
echo "| workload | who | snapshot ms | guest paused ms | file MiB on disk (size) |" \
	"restore → running ms | restore → next output line ms | runs ok | CORRUPT lines |"
echo "|---|---|---|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
	for k in godwit qemu; do
		python3 - "$OUT/snap-$w-$k.jsonl" "$w" "$k" "$BENCH_RUNS" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(key):
    v = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
    return "%.0f" % statistics.median(v) if v else "-"
def medf(key):
    v = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
    return "%.1f" % statistics.median(v) if v else "-"
wl = {"idle": "idle (heartbeat)", "mem512": "512 MiB touched"}[sys.argv[2]]
who = {"godwit": "godwit snapshot / restore",
       "qemu": "bare QEMU: stop, migrate file: (mapped-ram, multifd 2, add-fd, offset 4096), "
               "fsync, cont / -incoming defer, migrate-incoming the same, cont"}
print("| %s | %s | %s | %s | %s (%s) | %s | %s | %d/%s | %d |" % (
    wl, who[sys.argv[3]], med("snap_ms"), med("paused_ms"), medf("mib"), med("size_mib"),
    med("restore_run_ms"),
    med("restore_out_ms"), len(rs), sys.argv[4],
    sum(r.get("corrupt_lines", 0) for r in rs)))
PY
	done
done
echo
echo "Parts (medians): godwit's shim-reported snapshot ms; bare QEMU's migrate-to-file ms and fsync ms."
for w in "${WORKLOADS[@]}"; do
	echo "- $w: godwit shim $(med snap_shim_ms "$OUT/snap-$w-godwit.jsonl") ms;" \
		"QEMU migrate $(med migrate_ms "$OUT/snap-$w-qemu.jsonl") ms +" \
		"fsync $(med fsync_ms "$OUT/snap-$w-qemu.jsonl") ms"
done
