#!/usr/bin/env bash
# A control client that stops reading cannot stall a shim (docs/security.md, "Slow clients"):
# a client attaches to a container that prints a line every millisecond, asks for the whole
# log, and never reads. The shim cuts it off within about a second; meanwhile and afterwards
# the container's output keeps reaching its log at full speed, and `exec`, `ps` and
# `migrate --status` answer at once.
. tests/lib/e2e.sh
ROOT=$(new_root)
gw load -i "$IMAGES/gwtest-oci" >/dev/null
gw run -d --name flood gwtest counter 1 >/dev/null
for ((i = 0; i < 300; i++)); do gw logs flood 2>/dev/null | grep -q '^counter 200$' && break; sleep 0.2; done
assert_match "the container prints" "^counter [0-9]+$" "$(gw logs flood | tail -n 1)"

# the stuck client: a small receive buffer, attach with the log replayed, then no reads for
# 8 s; then it looks whether the shim hung up on it
OUT=$(mktemp)
echo "$OUT" >>"$ROOTS_FILE"
python3 - "$ROOT/containers/flood/shim.sock" >"$OUT" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b'{"execute":"attach","arguments":{"logs":true}}\n')
time.sleep(8)
s.settimeout(1)
end = time.time() + 5
try:
    while time.time() < end:
        if not s.recv(65536):
            print("cut off")
            break
    else:
        print("still open: data for 5 s more")
except ConnectionResetError:
    print("cut off")
except Exception as e:
    print("still open: %s" % e)
PY
STUCK=$!
sleep 1
n1=$(gw logs flood | wc -l)
t0=$(date +%s%N)
out=$(gw exec flood /bin/gwtest echo alive 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "exec answers while a client is stuck" "alive" "$out"
assert_true "... within 2 s ($ms ms)" test "$ms" -lt 2000
t0=$(date +%s%N)
gw ps >/dev/null
gw migrate --status flood >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
assert_true "ps and migrate --status answer within 1 s ($ms ms)" test "$ms" -lt 1000
sleep 3
n2=$(gw logs flood | wc -l)
echo "# log lines: $n1, then $n2 three seconds later"
assert_true "the output keeps reaching the log ($((n2 - n1)) lines in ~3 s)" \
	test "$((n2 - n1))" -gt 300
wait "$STUCK"
assert_eq "the shim cut the stuck client off" "cut off" "$(cat "$OUT")"
assert_match "the container still runs" "^flood +gwtest +running " "$(gw ps | grep '^flood ')"
gw rm -f flood >/dev/null
assert_eq "rm -f works" "" "$(gw ps -aq)"
finish
