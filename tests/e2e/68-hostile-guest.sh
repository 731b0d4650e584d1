#!/usr/bin/env bash
# Quotas and a hostile guest (docs/security.md, "Quotas", "A hostile guest"): the output log
# rotates at --log-opt max-size, keeps max-file files, and `logs` (-f too) reads across the
# rotations without a gap; then a container whose root takes the agent's virtio port from
# PID 1 and writes garbage, a frame claiming 4 GiB, replayed sequence numbers and bad headers
# into it, and floods its stdout and the serial console: the shim keeps answering, the
# console and shim logs stay within their caps, a container beside it runs on untouched, and
# `rm -f` removes it.
. tests/lib/e2e.sh
ROOT=$(new_root)
T=$(mktemp -d)
gw load -i "$IMAGES/gwtest-oci.tar" >/dev/null
gw load -i "$IMAGES/busybox-docker.tar" >/dev/null
stopped() { for _ in $(seq 1 "$2"); do [ "$(awk -v n="$1" '$1 == n { print $3 }' <<<"$(gw ps -a)")" = stopped ] && return 0; sleep 0.5; done; return 1; }
CT=$ROOT/containers

# ---- the output log's rotation ------------------------------------------------------------
gw run -d --name rot -m 192M --log-opt max-size=4k --log-opt max-file=3 busybox \
	sh -c 'sleep 2; i=0; while [ $i -lt 1000 ]; do echo line-$i; usleep 10000; i=$((i+1)); done' >/dev/null
gw logs -f rot >"$T/follow.txt" 2>&1 &
follower=$!
assert_true "the flooding container ends" stopped rot 600
wait "$follower"
assert_eq "three log files are kept (max-file=3)" "output.log output.log.1 output.log.2" \
	"$(cd "$CT/rot" && ls output.log* | tr '\n' ' ' | sed 's/ $//')"
big=$(find "$CT/rot" -name 'output.log*' -size +12k | wc -l)
assert_eq "each is about max-size (4k; none past 12k)" 0 "$big"
consecutive() { awk -F- 'NR == 1 { first = $2 } { if ($2 != first + NR - 1) bad = 1 } END { print (bad ? "gap" : "ok"), first, $2 }'; }
kept=$(gw logs rot | consecutive)
assert_match "logs reads the rotated files, oldest first, without a gap, to the last line" "^ok [1-9][0-9]* 999$" "$kept"
assert_eq "logs -f followed every rotation: all 1000 lines, in order" "ok 0 999" "$(consecutive <"$T/follow.txt")"
gw rm rot >/dev/null

# ---- a hostile guest beside a calm one ----------------------------------------------------
gw run -d --name calm -m 192M gwtest counter 100 >/dev/null
gw run -d --name evil -m 192M gwtest hostile 2 >/dev/null
last_calm() { gw logs calm 2>/dev/null | sed -n 's/^counter //p' | tail -n 1; }
said() { for _ in $(seq 1 "$3"); do gw logs "$1" 2>/dev/null | grep -q "$2" && return 0; sleep 1; done; return 1; }
assert_true "the hostile guest took the agent's port" said evil "hostile: agent port taken" 240
before=$(last_calm)
# its own output may lose lines to its garbage (the shim drops what it had buffered at a
# protocol error); its last line comes through once the link is clean again
assert_true "the hostile guest wrote into the port and flooded stdout and the console" \
	said evil "hostile: console flooded" 400
t0=$(date +%s%N)
out=$(gw ps -a 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_match "ps answers meanwhile, listing the hostile container" "^evil " "$(grep '^evil ' <<<"$out")"
assert_true "ps answered in under 5 s ($ms ms)" test "$ms" -lt 5000
shim=$(pgrep -f -- "--root $ROOT .*__shim .* evil\$" || true)
assert_true "its shim is alive" test -n "$shim" -a -d "/proc/${shim:-0}"
con=$(stat -c %s "$CT/evil/console.log" 2>/dev/null || echo 0)
assert_true "console.log stays within 1 MiB ($con bytes)" test "$con" -le 1048576
assert_true "the console's older part went to console.log.1 (2 MiB written)" test -s "$CT/evil/console.log.1"
assert_match "the garbage reached the shim (its protocol errors are in shim.log)" \
	"agent link: agent frame: " "$(head -c 4096 "$CT/evil/shim.log" 2>&1)"
sl=$(stat -c %s "$CT/evil/shim.log" 2>/dev/null || echo 0)
assert_true "shim.log stays within 1 MiB ($sl bytes)" test "$sl" -le 1048576
sleep 2
after=$(last_calm)
assert_true "the calm container ran on throughout ($before -> $after)" test "${after:-0}" -gt "${before:-0}"
assert_eq "exec in the calm container works" "calm-ok" "$(gw exec calm echo calm-ok 2>&1)"
t0=$(date +%s%N)
out=$(gw rm -f evil 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq "rm -f removes the hostile container" "0 evil" "$rc $out"
assert_true "rm -f took under 30 s ($ms ms)" test "$ms" -lt 30000
assert_eq "nothing of it is left (record, QEMU)" "" \
	"$(ls -d "$CT/evil" 2>/dev/null)$(pgrep -f -- "qemu-system.*$CT/evil/" || true)"
assert_eq "the calm container still runs" running "$(awk '$1 == "calm" { print $3 }' <<<"$(gw ps)")"
gw rm -f calm >/dev/null
rm -rf "$T"
finish
