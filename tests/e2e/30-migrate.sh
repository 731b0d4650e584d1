#!/usr/bin/env bash
# Live and offline migration between two hosts, each a network namespace with its own --root,
# over a veth pair: an idle guest, one dirtying 256 MiB per iteration, one writing to its disk
# with 2 CPUs, an offline move, and 10 moves back and forth. After each move the guest's own
# output proves it: its counter continues (no reset, no gap, no repeat in `logs`), memtest
# never reports CORRUPT, files on disk are intact; the source shows `migrated` and has no shim
# or QEMU left; the destination runs it.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts



# 1. idle guest, live. Its machine type is 9.0's, as if created on a host with QEMU 9.0: a
# container keeps its machine type wherever it moves (docs/qemu.md, "Machine type")
h1 run -d --name idle -m 192M --machine pc-i440fx-9.0 gwtest counter 100 >/dev/null
wait_num 1 idle "counter " 5
b=$(last_num idle 1 "counter ")
out=$(migrate_to 1 2 idle); rc=$?
echo "# idle: $out"
assert_eq "idle: migrate exits 0" 0 "$rc"
assert_match "idle: migrate reports the figures" "^migrated idle in [0-9.]+ s" "$out"
# a mostly idle guest moves by pre-copy with its free pages skipped (docs/migration-policy.md);
# asked before moved() removes the source's record
assert_match "idle: the move took the guest's free-page hints" \
	'"action":"free-page-hints","reason":"the guest.s vCPUs ran [0-9]+ % ' \
	"$(h1 migrate --status --json idle)"
moved 1 2 idle "counter " "$b"
out=$(hgw 2 exec idle gwtest echo alive 2>&1)
assert_eq "idle: exec works on the destination" "alive" "$out"
assert_match "idle: the destination's QEMU keeps the container's machine type" \
	"-machine pc-i440fx-9.0 " "$(tr '\0' ' ' <"/proc/$(qemu_pid_of 2 idle)/cmdline" 2>&1)"
assert_match "idle: the destination's VM has the free-page-hint device too" \
	"virtio-balloon-pci,id=balloon0,free-page-hint=on," \
	"$(tr '\0' ' ' <"/proc/$(qemu_pid_of 2 idle)/cmdline" 2>&1)"

# 2. a guest dirtying 256 MiB per iteration, live
h1 run -d --name mem -m 512M gwtest memtest 256 1000 >/dev/null
wait_num 1 mem "memtest iter=" 3 200
b=$(last_num mem 1 "memtest iter=")
rate=$(h1 logs -t mem | awk '/memtest iter=/ { split($1, t, "T"); split(t[2], s, ":");
	x = s[1] * 3600 + s[2] * 60 + s[3]; if (!n++) f = x; l = x } END { if (n > 1) printf "%.0f", (n - 1) * 256 / (l - f) }')
echo "# memtest dirties ~${rate:-?} MiB/s in the TCG guest before the move"
out=$(migrate_to 1 2 mem --timeout 120s); rc=$?
echo "# mem: $out"
assert_eq "memtest: migrate exits 0" 0 "$rc"
moved 1 2 mem "memtest iter=" "$b"
assert_eq "memtest: never CORRUPT" "" "$(hgw 2 logs mem | grep CORRUPT)"
kernel_ok 2 mem "mem"
hgw 2 rm -f mem >/dev/null

# 2b. the same guest on QEMU's multifd channels (--channels: the main channel and N more, each
# relayed over a connection of the move, docs/migration-protocol.md "Channels"), there and back
h1 run -d --name mfd -m 512M gwtest memtest 256 1000 >/dev/null
wait_num 1 mfd "memtest iter=" 3 200
out=$(h1 migrate --channels 2 --postcopy mfd tcp:127.0.0.1:1 2>&1); rc=$?
assert_eq "channels: --channels 2 with --postcopy is a usage error" 125 "$rc"
assert_match "channels: ... that says why" "excludes --postcopy" "$out"
for hop in "1 2 2" "2 1 3"; do
	read -r from to n <<<"$hop"
	b=$(last_num mfd "$from" "memtest iter=")
	out=$(migrate_to "$from" "$to" mfd --channels "$n" --json); rc=$?
	echo "# mfd h$from→h$to, $n channels: $out"
	assert_eq "channels $n: migrate exits 0" 0 "$rc"
	assert_match "channels $n: QEMU moved it on the main channel and $n more" \
		"\"channels\":$((n + 1))[,}]" "$out"
	assert_match "channels $n: it completed in pre-copy" '"kind":"live"' "$out"
	moved "$from" "$to" mfd "memtest iter=" "$b"
	assert_eq "channels $n: never CORRUPT" "" "$(hgw "$to" logs mfd | grep CORRUPT)"
	assert_eq "channels $n: no relay socket left on either side" "" \
		"$(ls "$(hroot "$from")/containers/mfd/vm/" "$(hroot "$to")/containers/mfd/vm/" 2>/dev/null |
			grep 'mig-.*\.sock')"
	kernel_ok "$to" mfd "mfd"
	hgw "$from" rm mfd >/dev/null
done
hgw 1 rm -f mfd >/dev/null

# 3. a guest writing to its disk, 2 CPUs, live; then 4. offline back
h1 run -d --name disk --cpus 2 -m 256M busybox sh -c \
	'i=0; while true; do echo "w $i" >> /data.log; echo "w $i"; i=$((i+1)); sleep 0.1; done' >/dev/null
wait_num 1 disk "w " 5
sum1=$(blob_sum 1 disk)
assert_match "disk: the checksum of a fresh file was taken" "^[0-9a-f]{32}  /blob$" "$sum1"
b=$(last_num disk 1 "w ")
out=$(migrate_to 1 2 disk); rc=$?
echo "# disk: $out"
assert_eq "disk: migrate exits 0" 0 "$rc"
moved 1 2 disk "w " "$b"
assert_eq "disk: --cpus 2 still 2 CPUs on the destination" "2" "$(hgw 2 exec disk nproc)"
assert_eq "disk: a file written before the move is intact" "$sum1" "$(hgw 2 exec disk md5sum /blob)"
b=$(last_num disk 2 "w ")
out=$(migrate_to 2 1 disk --offline); rc=$?
echo "# disk offline: $out"
assert_eq "offline: migrate exits 0" 0 "$rc"
moved 2 1 disk "w " "$b"
assert_eq "offline: the file is intact" "$sum1" "$(h1 exec disk md5sum /blob)"
# the guest appended "w N" to /data.log exactly as it printed it: same lines, in order
assert_match "offline: the disk log runs on without gap or repeat" "^ok [1-9][0-9]*$" "$(disk_log 1 disk)"
assert_true "disk: the guest kernel stayed healthy" guest_healthy "$R1" disk
h1 rm -f disk >/dev/null

# 5. ten moves back and forth with the small idle guest (it is on h2 now); the source's
# tombstone is removed before the guest comes back
at=2 fails=0
for i in $(seq 1 10); do
	to=$((3 - at))
	b=$(last_num idle $at "counter ")
	out=$(migrate_to $at $to idle); rc=$?
	echo "# loop $i h$at→h$to: $out"
	[ "$rc" -eq 0 ] || fails=$((fails + 1))
	hgw $at ps -a | grep -q "^idle .* migrated " || fails=$((fails + 1))
	[ -z "$(qemu_pid_of $at idle)$(shim_pid_of $at idle)" ] || fails=$((fails + 1))
	[ "$fails" -eq 0 ] || { why_down $at idle; why_down $to idle; break; }
	hgw $at rm idle >/dev/null || fails=$((fails + 1))
	# (40 s: a guest silent for 30 s is named at the failure, tests/lib/e2e.sh)
	wait_num $to idle "counter " $((b + 2)) 200 || { fails=$((fails + 1)); why_down $to idle; at=$to; break; }
	at=$to
done
assert_eq "10 moves back and forth: each succeeded, cleaned up its source, ran on" 0 "$fails"
assert_eq "10 moves: the counter never reset, skipped or repeated" "" "$(seq_ok $at idle "counter ")"
out=$(hgwt 60 $at exec idle gwtest echo still-alive 2>&1)
assert_eq "10 moves: exec works at the end" "still-alive" "$out"
assert_true "10 moves: the guest kernel stayed healthy" guest_healthy "$(hroot $at)" idle
hgw $at rm -f idle >/dev/null
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
