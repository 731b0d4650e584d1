#!/usr/bin/env python3
"""Drive a command under a new pseudo-terminal, as a user at a terminal would.

usage: pty_drive.py STEP... -- COMMAND [ARG...]
steps, in order:
  size=RxC     set the terminal's window size (the first one before the command starts)
  send=TEXT    type TEXT (Python escapes: \\r, \\x03 for Ctrl-C, \\x10\\x11 for ctrl-p ctrl-q)
  expect=TEXT  wait (30 s at most) until the output holds TEXT; prints "got: " and what came
               up to and including it
  pause=S      sleep S seconds
  exit         wait for the command to end; prints "status: N" and the seconds it took
A step that times out prints "timeout: " and what came, kills the command and exits 9.
"""
import os, pty, select, struct, sys, time, fcntl, termios, signal

def main():
    args = sys.argv[1:]
    sep = args.index("--")
    steps, cmd = args[:sep], args[sep + 1:]
    size = (24, 80)
    if steps and steps[0].startswith("size="):
        r, c = steps.pop(0)[5:].split("x")
        size = (int(r), int(c))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    t0 = time.time()
    buf = b""
    eof = False

    def fill(timeout):
        nonlocal buf, eof
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                d = b""
            if d:
                buf += d
            else:
                eof = True

    def fail(what):
        print("timeout: %s; output so far: %r" % (what, buf), flush=True)
        os.kill(pid, signal.SIGKILL)
        sys.exit(9)

    for st in steps:
        key, _, val = st.partition("=")
        if key == "size":
            r, c = val.split("x")
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(r), int(c), 0, 0))
        elif key == "send":
            os.write(fd, val.encode().decode("unicode_escape").encode("latin-1"))
        elif key == "pause":
            time.sleep(float(val))
        elif key == "expect":
            pat = val.encode().decode("unicode_escape").encode("latin-1")
            end = time.time() + 30
            while pat not in buf:
                if eof or time.time() > end:
                    fail(repr(val))
                fill(0.2)
            i = buf.index(pat) + len(pat)
            print("got: %r" % buf[:i], flush=True)
            buf = buf[i:]
        elif key == "exit":
            end = time.time() + 60
            while not eof and time.time() < end:
                fill(0.2)
            done, st_ = os.waitpid(pid, os.WNOHANG)
            while not done and time.time() < end:
                time.sleep(0.1)
                done, st_ = os.waitpid(pid, os.WNOHANG)
            if not done:
                fail("exit")
            print("rest: %r" % buf, flush=True)
            print("status: %d" % os.waitstatus_to_exitcode(st_), flush=True)
            print("seconds: %.1f" % (time.time() - t0), flush=True)
            return
        else:
            sys.exit("pty_drive: unknown step %r" % st)

main()
