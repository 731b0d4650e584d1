#!/usr/bin/env python3
"""Bench tools for bench/*.sh (no dependencies beyond python3):
  firstline MATCH TIMEOUT CMD...   run CMD, print ms from its start to the first stdout line
                                   containing MATCH, then wait for it (killed at TIMEOUT s)
  reader OUT SOCK...               connect to unix sockets (serial consoles), write every line
                                   as "HOST_EPOCH_S SOCKIDX LINE" to OUT until killed
  qmpmig SRC DST URI BW DOWN TMO [CAPS [PC [MODE]]]
                                   drive a bare-QEMU migration over QMP by QEMU's events, as
                                   godwit's shim does: set capabilities CAPS (comma list, on
                                   both; "-" = none) plus `events`, `migrate-incoming` URI on DST
                                   (started -incoming defer, no -S: it resumes on its own the
                                   moment it may), migrate SRC to URI (BW bytes/s and DOWN ms if
                                   > 0, else QEMU's defaults) and wait for its MIGRATION events;
                                   PC=1: migrate-start-postcopy at the MIGRATION_PASS of round 2
                                   (after the first pass); cancel after TMO s; print one JSON
                                   object. MODE (a destination started with -S): "libvirt"
                                   resumes it at the `completed` event; "poll" polls
                                   query-migrate every 100 ms, no events (the old harness)
  qmpcmd SOCK CMD                  run one QMP command without arguments (e.g. quit)
  gaps FILE T0 T1 [FROM RELEASED]  ("-": none) largest gap (ms) between consecutive heartbeat lines with a
                                   host time in [T0-1, T1+2] s (arrival times), plus the
                                   baseline p99 before T0; with FROM and RELEASED (RFC 3339:
                                   godwit's held output) also the largest gap on the times the
                                   world saw the lines (world_pause_ms): a line that arrived in
                                   [FROM, RELEASED) was seen at RELEASED
  median KEY FILE...               median of a numeric JSON field over JSON-lines files
  cpuwatch OUT MATCH...            until SIGTERM, every 10 ms read the run time of every thread
                                   (/proc/PID/task/TID/schedstat, ns) of the processes whose
                                   command line holds a MATCH (new processes looked for every
                                   50 ms); then write the samples to OUT (JSON)
  cpusum OUT T0 T1                 the CPU time (ms) the watched threads ran in [T0, T1] (epoch
                                   s), by kind: vcpu (QEMU's "CPU n/..." threads), mig (QEMU's
                                   migration threads), qemu (QEMU's other threads), godwit (its
                                   shims and CLI), and by side (the index of the MATCH); a
                                   thread born in the window counts from 0; one that exited
                                   loses at most its last 10 ms. OUT.ready appears once the
                                   first pass is done: wait for it before T0
  tbs LOG [asm|trace]              a destination QEMU's log (-d in_asm with the trace events
                                   vm_state_notify, virtio_console_flush_buf, serial_write, with
                                   -msg timestamp=on): ms from the guest's resume to its first
                                   output (a flush of an agent port's bytes, or a byte written
                                   to the UART's data register) and the blocks translated in
                                   between, guest kernel and user apart; one JSON object
                                   (trace: a log of the events only, no blocks counted)
"""
import json, os, select, socket, statistics, subprocess, sys, time
from datetime import datetime


def firstline(match, timeout, cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    got = None
    deadline = t0 + float(timeout)
    os.set_blocking(p.stdout.fileno(), True)
    for line in p.stdout:
        if got is None and match.encode() in line:
            got = (time.monotonic() - t0) * 1000
            print("%.0f" % got, flush=True)
        if time.monotonic() > deadline:
            break
    try:
        p.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if got is None:
        print("firstline: no line with %r from %s" % (match, cmd[0]), file=sys.stderr)
        return 1
    return 0


def connect_unix(path, timeout=30):
    end = time.monotonic() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def reader(out, socks):
    import selectors
    sel = selectors.DefaultSelector()
    bufs = {}
    for i, path in enumerate(socks):
        s = connect_unix(path)
        sel.register(s, selectors.EVENT_READ, i)
        bufs[i] = b""
    with open(out, "w", buffering=1) as f:
        while sel.get_map():
            for key, _ in sel.select():
                data = key.fileobj.recv(65536)
                now = time.time()
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                bufs[key.data] += data
                *lines, bufs[key.data] = bufs[key.data].split(b"\n")
                for ln in lines:
                    f.write("%.6f %d %s\n" % (now, key.data,
                                              ln.decode("utf-8", "replace").rstrip("\r")))


class Qmp:
    """One QMP connection; events that arrive while a command waits are kept for event()."""

    def __init__(self, path):
        self.s = connect_unix(path)
        self.buf, self.events = b"", []
        self._msg()  # greeting
        self.cmd("qmp_capabilities")

    def _msg(self, timeout=None):
        while b"\n" not in self.buf:
            if timeout is not None and not select.select([self.s], [], [], timeout)[0]:
                return None
            data = self.s.recv(65536)
            if not data:
                raise OSError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._msg()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"].get("desc")))
            return r.get("return")

    def event(self, timeout):
        """The next event, waiting at most timeout s (None if none came)."""
        end = time.monotonic() + timeout
        while not self.events:
            left = end - time.monotonic()
            r = self._msg(max(0.0, left))
            if r is None:
                return None
            if "event" in r:
                return r
        return self.events.pop(0)


def qmpmig(src, dst, uri, bw, down, tmo, caps="-", pc="0", mode="events"):
    # Driven by QEMU's own events, as godwit's shim is: the `events` capability on both, the
    # source's MIGRATION (status) and MIGRATION_PASS (a new round) wake this loop at once;
    # query-migrate is sampled every 100 ms only for the figures. The destination was started
    # without -S, so QEMU resumes its guest the moment it may (godwit's early resume).
    # Two labelled variants, their destination started with -S: MODE "libvirt" resumes it
    # (`cont`) at the source's `completed` event, as libvirt does; MODE "poll" is the harness
    # this bench had before issue 17: no events, `query-migrate` polled every 100 ms, the
    # destination resumed once a poll saw `completed`.
    s, d = Qmp(src), Qmp(dst)
    poll = mode == "poll"
    cl = [{"capability": c, "state": True} for c in (caps.split(",") if caps != "-" else [])]
    if not poll:
        cl.append({"capability": "events", "state": True})
    s.cmd("migrate-set-capabilities", capabilities=cl)
    d.cmd("migrate-set-capabilities", capabilities=cl)
    d.cmd("migrate-incoming", uri=uri)
    params = {}
    if int(bw) > 0:
        params["max-bandwidth"] = int(bw)
    if int(down) > 0:
        params["downtime-limit"] = int(down)
    if params:
        s.cmd("migrate-set-parameters", **params)
    eff = s.cmd("query-migrate-parameters")
    t0 = time.time()
    s.cmd("migrate", uri=uri)
    rates, q = [], {}
    status = "active"
    t_pc, t_q = None, 0.0
    while True:
        if poll:
            time.sleep(0.1)
            ev = None
            status = s.cmd("query-migrate").get("status", status)
        else:
            ev = s.event(0.1)
        now = time.time()
        if ev and ev["event"] == "MIGRATION":
            status = ev["data"]["status"]
        elif ev and ev["event"] == "MIGRATION_PASS" and pc == "1" and t_pc is None and \
                ev["data"]["pass"] >= 2:
            # the first full pass is done (dirty-sync-count 2): switch
            s.cmd("migrate-start-postcopy")
            t_pc = now
        if status in ("completed", "failed", "cancelled"):
            if status == "completed" and mode != "events":
                d.cmd("cont")
            break
        if now - t_q >= 0.1:
            t_q = now
            q = s.cmd("query-migrate")
            ram = q.get("ram", {})
            if ram.get("dirty-pages-rate"):
                rates.append(ram["dirty-pages-rate"] * ram.get("page-size", 4096) / 2**20)
        if now - t0 > float(tmo):
            s.cmd("migrate_cancel")
            while s.cmd("query-migrate").get("status") not in ("cancelled", "failed",
                                                                "completed"):
                time.sleep(0.05)
            status = "timeout"
            break
    t1 = time.time()
    if status != "completed":
        s.cmd("cont") if s.cmd("query-status").get("status") != "running" else None
    q = s.cmd("query-migrate")  # the final figures (downtime, bytes)
    ram = q.get("ram", {})
    print(json.dumps({
        "completed": status == "completed", "status": status,
        "t0": t0, "t1": time.time(), "total_ms": round((t1 - t0) * 1000),
        "downtime_ms": q.get("downtime"), "bytes": ram.get("transferred"),
        "rounds": ram.get("dirty-sync-count"),
        "dirty_mibs": round(statistics.median(rates), 1) if rates else 0,
        "dirty_mibs_max": round(max(rates), 1) if rates else 0,
        "max_bandwidth": eff.get("max-bandwidth"), "downtime_limit": eff.get("downtime-limit"),
        "caps": caps, "postcopy": t_pc is not None, "mode": mode,
        "postcopy_at_ms": round((t_pc - t0) * 1000) if t_pc else None,
        "throttle_pct": q.get("cpu-throttle-percentage"),
    }))


def qmpcmd(sock, name):
    try:
        Qmp(sock).cmd(name)
    except (OSError, RuntimeError, ValueError):
        pass


def parse_time(tok):
    if tok[:1].isdigit() and "T" in tok:  # RFC 3339 with nanoseconds, UTC
        base, frac = tok.rstrip("Z").split(".")
        dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
        return dt.replace(tzinfo=__import__("datetime").timezone.utc).timestamp() + \
            float("0." + frac)
    return float(tok)


def gaps(path, t0, t1, held_from=None, released=None):
    t0, t1 = float(t0), float(t1)
    # held output (godwit's destination before COMMIT): lines that arrived from HELD_FROM on
    # reached the world only at RELEASED; every other line when it arrived
    held_from = parse_time(held_from) if held_from and held_from != "-" else None
    released = parse_time(released) if released and released != "-" else None
    if held_from is None or released is None:
        held_from = released = None  # nothing held: the world saw each line as it arrived
    pts = []  # (host time, guest µs since heartbeat start)
    with open(path, errors="replace") as f:
        for ln in f:
            parts = ln.split()
            # godwit: "TIME hb N US"; reader: "TIME IDX hb N US"
            if "hb" not in parts[:3]:
                continue
            i = parts.index("hb")
            try:
                pts.append((parse_time(parts[0]), int(parts[i + 2])))
            except (ValueError, IndexError):
                continue
    pts.sort()
    seen = sorted(released if held_from is not None and held_from <= h < released else h
                  for h, _ in pts)
    world = [b - a for a, b in zip(seen, seen[1:]) if b >= t0 - 1 and a <= t1 + 2]
    pairs = list(zip(pts, pts[1:]))
    inwin = [(b[0] - a[0], (b[1] - a[1]) / 1e6) for a, b in pairs
             if b[0] >= t0 - 1 and a[0] <= t1 + 2]
    before = sorted(b[0] - a[0] for a, b in pairs if b[0] < t0 - 1)
    p99 = before[int(len(before) * 0.99)] if before else 0
    # the largest gap of the last 4.5 s before the move: what "the worst gap after the switch"
    # (the largest of up to 5 s) is to be read against, besides the p99
    calm = [b[0] - a[0] for a, b in pairs if t0 - 5 <= a[0] and b[0] < t0 - 0.5]
    worst = max(inwin) if inwin else None
    # the worst gap after the switch (the largest gap) up to T1+5 s: post-copy page faults
    post = None
    if inwin:
        wi = max(range(len(pairs)), key=lambda k: pairs[k][1][0] - pairs[k][0][0]
                 if pairs[k][1][0] >= t0 - 1 and pairs[k][0][0] <= t1 + 2 else -1)
        pg = [b[0] - a[0] for a, b in pairs[wi + 1:] if a[0] <= t1 + 5]
        post = max(pg) if pg else None
    # host minus guest time: constant while the guest runs and its output flows; a frozen VM
    # loses its clock, so the offset steps up by the time it was stopped and stays there,
    # while output that is only held back returns to the old offset once delivered
    off_before = [h - g / 1e6 for h, g in pts if h < t0 - 1]
    off_after = [h - g / 1e6 for h, g in pts if h > t1 + 1]
    frozen = None
    if off_before and off_after:
        frozen = round((statistics.median(off_after) - statistics.median(off_before)) * 1000, 1)
    # the guest's clock stops while the VM is stopped: a host gap with a small guest gap is a
    # frozen guest; a guest gap as large as the host gap is output held back while it ran
    print(json.dumps({"pause_ms": round(worst[0] * 1000, 1) if worst else None,
                      # the same on the times the world saw the lines (held output released)
                      "world_pause_ms": round(max(world) * 1000, 1) if world else None,
                      "held_ms": round((released - held_from) * 1000, 1)
                      if held_from is not None else None,
                      "pause_guest_ms": round(worst[1] * 1000, 1) if worst else None,
                      "frozen_ms": frozen,
                      # liveness after the switch: heartbeat lines that arrived later than
                      # 0.5 s after the migration ended (0 = the guest or its output died)
                      "after_lines": sum(1 for h, _ in pts if h > t1 + 0.5),
                      # still advancing 5 s after the end of the migration
                      "after5_lines": sum(1 for h, _ in pts if h > t1 + 5),
                      "post_gap_ms": round(post * 1000, 1) if post is not None else None,
                      "baseline_p99_ms": round(p99 * 1000, 1),
                      "baseline_max_ms": round(max(calm) * 1000, 1) if calm else None,
                      "hb_lines": len(pts)}))


def median(key, files):
    vals = []
    for fn in files:
        with open(fn) as f:
            for ln in f:
                ln = ln.strip()
                if ln.startswith("{"):
                    v = json.loads(ln).get(key)
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        vals.append(v)
    print(statistics.median(vals) if vals else "n/a")


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _btime():
    with open("/proc/stat") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("btime "))


def _born(pid, tid, btime):
    """A thread's start, epoch s (its stat's starttime, clock ticks after boot)."""
    try:
        with open("/proc/%s/task/%s/stat" % (pid, tid)) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        return btime + start / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _comm(pid, tid):
    try:
        with open("/proc/%s/task/%s/comm" % (pid, tid)) as f:
            return f.read().strip()
    except OSError:
        return None


def _kind(isq, isg, comm):
    if isq:
        return ("vcpu" if comm.startswith("CPU ") else
                "mig" if comm.startswith(("live_migration", "mig/", "multifd")) else "qemu")
    return "godwit" if isg else "other"


# how long after its start a process may still exec QEMU, or a QEMU thread get its name
RENAME_S = 1.0


def cpuwatch(out, matches):
    import signal
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    procs = {}    # pid -> (side, is_qemu, is_godwit)
    threads = {}  # tid -> {"pid", "side", "kind", "comm", "s": [[t, ns], ...]}
    me = str(os.getpid())
    btime = _btime()
    last_scan = 0.0
    while not stop:
        now = time.time()
        if now - last_scan >= 0.05:
            last_scan = now
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                if pid in procs:
                    # a shim forks and execs QEMU: seen before its exec, the process (and the
                    # threads it has by now) counted as godwit's; look again while it is young
                    side, isq, isg, born = procs[pid]
                    if isq or now - born > RENAME_S:
                        continue
                    cl = _cmdline(pid)
                    if cl and "qemu-system" in cl:
                        procs[pid] = (side, True, False, born)
                        for th in threads.values():
                            if th["pid"] == pid:
                                th["comm"] = _comm(pid, th["tid"]) or th["comm"]
                                th["kind"] = _kind(True, False, th["comm"])
                    continue
                cl = _cmdline(pid)
                if not cl:
                    continue
                for i, m in enumerate(matches):
                    if m in cl and "bt.py" not in cl:
                        procs[pid] = (i, "qemu-system" in cl, "godwit" in cl.split(" ")[0],
                                      _born(pid, pid, btime))
                        break
            # QEMU names its threads after creating them: a thread seen before it was named
            # counted as one of QEMU's others; look again while it is young
            for tid, th in threads.items():
                if th["kind"] == "qemu" and now - th["born"] <= RENAME_S:
                    comm = _comm(th["pid"], tid)
                    if comm and comm != th["comm"]:
                        th["comm"], th["kind"] = comm, _kind(True, False, comm)
        for pid, (side, isq, isg, _) in list(procs.items()):
            try:
                tids = os.listdir("/proc/%s/task" % pid)
            except OSError:
                del procs[pid]
                continue
            for tid in tids:
                try:
                    with open("/proc/%s/task/%s/schedstat" % (pid, tid)) as f:
                        ss = f.read().split()
                        ns, wait = int(ss[0]), int(ss[1])
                except (OSError, ValueError, IndexError):
                    continue
                th = threads.get(tid)
                if th is None:
                    comm = _comm(pid, tid) or "?"
                    th = threads[tid] = {"pid": pid, "tid": tid, "side": side,
                                         "kind": _kind(isq, isg, comm), "comm": comm,
                                         "born": _born(pid, tid, btime), "s": []}
                th["s"].append([now, ns, wait])
        if not os.path.exists(out + ".ready"):
            open(out + ".ready", "w").close()  # the first pass is done: the harness may go on
        time.sleep(0.01)
    with open(out, "w") as f:
        json.dump(threads, f)


def cpusum(out, t0, t1):
    t0, t1 = float(t0), float(t1)
    with open(out) as f:
        threads = json.load(f)
    kinds, sides, detail = {}, {}, {}
    for th in threads.values():
        before = [ns for t, ns, *_ in th["s"] if t <= t0]
        upto = [ns for t, ns, *_ in th["s"] if t <= t1]
        if not upto:
            continue
        # born before T0 but first seen after it: from its first sample (an undercount)
        base = before[-1] if before else (upto[0] if th.get("born", 0) < t0 - 0.02 else 0)
        ms = (upto[-1] - base) / 1e6
        kinds[th["kind"]] = kinds.get(th["kind"], 0) + ms
        key = "%d:%s" % (th["side"], th["comm"])
        detail[key] = detail.get(key, 0) + ms
        sides[th["side"]] = sides.get(th["side"], 0) + ms
    r = {"cpu_ms": round(sum(kinds.values()))}
    for k in ("vcpu", "mig", "qemu", "godwit"):
        r["cpu_%s_ms" % k] = round(kinds.get(k, 0))
    for i, v in sorted(sides.items()):
        r["cpu_side%d_ms" % i] = round(v)
    # the threads that ran most, "SIDE:NAME" (side 0 the source)
    r["cpu_detail"] = {k: round(v) for k, v in sorted(detail.items(), key=lambda kv: -kv[1])
                       if v >= 20}
    print(json.dumps(r))


def tbs(path, log="asm"):
    # in_asm writes "IN:" then one "0xADDR: insn" line per instruction of each block it
    # translates; trace events are "PID@EPOCH.US:name args"
    resumed = out = None
    kernel = user = 0
    first_addr = False
    with open(path, errors="replace") as f:
        for ln in f:
            if ln.startswith("IN:"):
                first_addr = resumed is not None and out is None
                continue
            if first_addr and ln.startswith("0x"):
                first_addr = False
                if int(ln.split(":", 1)[0], 16) >= 0xffff800000000000:
                    kernel += 1
                else:
                    user += 1
                continue
            at, _, ev = ln.partition(":")
            if "@" not in at:
                continue
            t = float(at.split("@", 1)[1])
            if resumed is None and ev.startswith("vm_state_notify running 1"):
                resumed = t
            elif resumed is not None and out is None and (
                    ev.startswith("virtio_console_flush_buf") or
                    ev.startswith("serial_write write addr 0x00 ")):
                out = t
                break
    r = {"resume_to_output_ms": round((out - resumed) * 1000, 1)
         if resumed is not None and out is not None else None}
    if log == "asm":  # a log of events only has no blocks to count
        r.update({"tbs_kernel": kernel, "tbs_user": user, "tbs": kernel + user})
    print(json.dumps(r))


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    if a[0] == "firstline":
        return firstline(a[1], a[2], a[3:])
    if a[0] == "reader":
        return reader(a[1], a[2:])
    if a[0] == "qmpmig":
        return qmpmig(*a[1:10])
    if a[0] == "qmpcmd":
        return qmpcmd(a[1], a[2])
    if a[0] == "gaps":
        return gaps(*a[1:6])
    if a[0] == "median":
        return median(a[1], a[2:])
    if a[0] == "cpuwatch":
        return cpuwatch(a[1], a[2:])
    if a[0] == "cpusum":
        return cpusum(a[1], a[2], a[3])
    if a[0] == "tbs":
        return tbs(*a[1:3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main() or 0)
