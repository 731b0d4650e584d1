#!/usr/bin/env python3
"""One TCP connection that streams both ways, checked byte for byte (tests/e2e/61-network-move.sh).

  streamer.py connect HOST PORT OUT    connect to an echo server (in a container)
  streamer.py listen HOST PORT OUT     accept one connection from a container's echo client
  streamer.py redis HOST PORT OUT      one connection to a Redis server: SET key:N N, then GET
                                       key:N back, 100 pairs a second (tests/e2e/62-redis-move.sh);
                                       "sent" counts the SETs, "echoed" the GETs that returned N

Sends numbered lines ("%08d\\n", 100 a second, at most 200 unanswered) and reads them back:
every byte must come back in order, none lost, duplicated or changed. OUT gets the figures as
JSON, rewritten every half second: sent, echoed, bad (the first wrong line), error (a reset or
a close), max_stall_ms (the longest time without a byte back while lines were unanswered),
stalls (each wait of 50 ms or more: [epoch seconds at its end, ms], the last 500), done. Creating OUT.stop ends the sending; the script then waits up to 30 s for the rest to
come back, writes done, and exits.
"""
import json
import os
import select
import socket
import sys
import time

LINE = 9


def write(out, st):
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
    os.replace(tmp, out)


def new_status(out):
    st = {"sent": 0, "echoed": 0, "bad": None, "error": None, "max_stall_ms": 0,
          "stalls": [], "connected": False, "done": False}
    write(out, st)
    return st


def stalled(st, ms):
    st["max_stall_ms"] = max(st["max_stall_ms"], ms)
    if ms >= 50:
        st["stalls"] = (st["stalls"] + [[round(time.time(), 3), ms]])[-500:]


def open_conn(mode, host, port):
    if mode == "connect":
        for _ in range(600):
            try:
                return socket.create_connection((host, port), timeout=5)
            except OSError:
                time.sleep(0.2)
        raise OSError("could not connect")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(300)
    c, _ = ls.accept()
    ls.close()
    return c


def run_redis(host, port, out):
    st = new_status(out)
    s = open_conn("connect", host, int(port))
    s.settimeout(120)
    f = s.makefile("rb")
    st["connected"] = True
    last, next_write = time.monotonic(), 0

    def cmd(*words):
        nonlocal last
        req = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        s.sendall(req)
        line = f.readline()
        now = time.monotonic()
        stalled(st, round((now - last) * 1000))
        last = now
        if line.startswith(b"$") and int(line[1:]) >= 0:
            data = f.read(int(line[1:]) + 2)[:-2]
            return data
        if not line:
            raise OSError("closed by the server")
        return line.rstrip(b"\r\n")

    try:
        while not os.path.exists(out + ".stop"):
            n = st["sent"]
            r = cmd(b"SET", b"key:%d" % n, b"%d" % n)
            if r != b"+OK" and st["bad"] is None:
                st["bad"] = "SET key:%d answered %r" % (n, r)
            st["sent"] += 1
            r = cmd(b"GET", b"key:%d" % n)
            if r == b"%d" % n:
                st["echoed"] += 1
            elif st["bad"] is None:
                st["bad"] = "GET key:%d answered %r" % (n, r)
            if time.monotonic() >= next_write:
                write(out, st)
                next_write = time.monotonic() + 0.5
            time.sleep(0.01)
        # every key written, read back at the end too
        for n in range(0, st["sent"], max(1, st["sent"] // 100)):
            r = cmd(b"GET", b"key:%d" % n)
            if r != b"%d" % n and st["bad"] is None:
                st["bad"] = "at the end, GET key:%d answered %r" % (n, r)
    except OSError as e:
        st["error"] = str(e)
    st["done"] = True
    write(out, st)
    s.close()


def run(mode, host, port, out):
    if mode == "redis":
        return run_redis(host, port, out)
    st = new_status(out)
    s = open_conn(mode, host, int(port))
    s.setblocking(False)
    st["connected"] = True
    buf = b""
    last_rx = time.monotonic()
    next_tx = last_rx
    next_write = last_rx
    stop_at = None
    while True:
        now = time.monotonic()
        if stop_at is None and os.path.exists(out + ".stop"):
            stop_at = now
        if st["sent"] == st["echoed"]:
            last_rx = now  # nothing unanswered: no stall
        if stop_at is not None and (st["sent"] == st["echoed"] or now - stop_at > 30):
            break
        want_tx = stop_at is None and now >= next_tx and st["sent"] - st["echoed"] < 200
        r, _, _ = select.select([s], [], [], 0.005)
        try:
            if want_tx:
                s.send(b"%08d\n" % st["sent"])
                st["sent"] += 1
                next_tx = now + 0.01
            if r:
                data = s.recv(65536)
                if not data:
                    st["error"] = "closed by the peer"
                    break
                buf += data
                stalled(st, round((time.monotonic() - last_rx) * 1000))
                last_rx = time.monotonic()
                while len(buf) >= LINE:
                    line, buf = buf[:LINE], buf[LINE:]
                    if line != b"%08d\n" % st["echoed"] and st["bad"] is None:
                        st["bad"] = "line %d came back as %r" % (st["echoed"], line)
                    st["echoed"] += 1
        except BlockingIOError:
            pass
        except OSError as e:
            st["error"] = str(e)
            break
        if now >= next_write:
            write(out, st)
            next_write = now + 0.5
    st["done"] = True
    write(out, st)
    s.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("connect", "listen", "redis"):
        sys.exit(__doc__)
    try:
        run(*sys.argv[1:])
    except OSError as e:
        write(sys.argv[4], {"error": str(e), "done": True, "connected": False})
        sys.exit(1)
