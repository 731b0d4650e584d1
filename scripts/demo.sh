#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): install what godwit needs, build it
# and its guest kit, then start a container VM on one local "host" and live-migrate it to a
# second one while it keeps printing, and show what was measured.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing packages"
scripts/deps.sh
echo "== building godwit, the guest agent and the guest kit"
make -s all guest >/dev/null
tests/lib/mkimages.sh build/test-images >/dev/null
G=build/godwit
A=$(mktemp -d /tmp/godwit-demo-a.XXXXXX)
B=$(mktemp -d /tmp/godwit-demo-b.XXXXXX)
cleanup() {
	for r in "$A" "$B"; do
		for n in $($G --root "$r" ps -aq 2>/dev/null); do $G --root "$r" rm -f "$n" >/dev/null 2>&1 || true; done
		rm -rf "$r"
	done
}
trap cleanup EXIT
PORT=${GODWIT_DEMO_PORT:-7071}

echo "== two hosts: $A and $B"
$G --root "$A" load -i build/test-images/gwtest-oci.tar
$G --root "$B" load -i build/test-images/gwtest-oci.tar
$G --root "$A" info | sed -n '1,4p'
echo "== host A: run a container that counts and keeps a checksummed 64 MiB buffer"
$G --root "$A" run -d --name web -m 512 gwtest memtest 64 200
sleep 6
$G --root "$A" ps
$G --root "$A" logs web | tail -n 2
echo "== host B: wait for it"
$G --root "$B" incoming --name web --listen tcp:127.0.0.1:$PORT
echo "== live-migrate A -> B"
$G --root "$A" migrate web tcp:127.0.0.1:$PORT
sleep 3
echo "== after the move"
$G --root "$A" ps -a
$G --root "$B" ps
echo "-- the container's output on B continues where A left off:"
$G --root "$B" logs -t web | tail -n 4
$G --root "$B" exec web echo "exec on host B works"
# the largest gap between consecutive output lines (host arrival times) spans the switch
$G --root "$B" logs -t web | awk '{ split($1, t, "T"); split(t[2], h, ":"); s = h[1]*3600 + h[2]*60 + h[3];
	if (n++) { g = s - p; if (g > max) max = g; sum += g } p = s }
	END { printf "guest output: %d lines, typical gap %.0f ms, largest gap %.0f ms (includes the pause)\n", n, 1000*sum/(n-1), 1000*max }'
if $G --root "$B" logs web | grep -q CORRUPT; then
	echo "memory corrupted across the move"; exit 1
fi
echo "== done"
