#!/usr/bin/env python3
"""Stand in for conmon around `godwit-runtime create`: become a child subreaper, run the
create command with stdout and stderr to OUT and ERR (the container's stdio, as conmon's
pipes are), read the pid file it wrote, and wait for that process (the shim, reparented to
us) like conmon does. Prints "created PID" once create succeeded, then "exit N" or
"signal N" when the process ends (or "create failed N").
Usage: oci_reap.py OUT ERR PIDFILE -- COMMAND..."""
import ctypes, os, sys

out, err, pidfile = sys.argv[1:4]
cmd = sys.argv[5:]
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
o = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
e = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
pid = os.fork()
if pid == 0:
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    os.dup2(o, 1)
    os.dup2(e, 2)
    os.execvp(cmd[0], cmd)
_, st = os.waitpid(pid, 0)
if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
    print("create failed", os.waitstatus_to_exitcode(st), flush=True)
    sys.exit(0)
shim = int(open(pidfile).read())
print("created", shim, flush=True)
while True:
    p, st = os.waitpid(-1, 0)  # the double fork's middle child too, if it was slow
    if p == shim:
        break
if os.WIFEXITED(st):
    print("exit", os.WEXITSTATUS(st), flush=True)
else:
    print("signal", os.WTERMSIG(st), flush=True)
