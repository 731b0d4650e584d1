#!/usr/bin/env bash
# Post-copy of a guest that writes its disk (--postcopy), between two hosts, each a network
# namespace with its own --root: the overlay crosses by the NBD mirror, RAM switches to
# post-copy after the first pass; a file and the guest's disk log must be intact, and the move
# back (pre-copy) too. Under TCG with QEMU 7.2 this guest's kernel broke on every run (QEMU
# before 9.0 loses writes in TCG migration: docs/qemu.md), so a healthy kernel here is the
# check that the QEMU in use has the fix. The memory-only post-copy tests are
# tests/e2e/50-postcopy.sh.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts

# switched OUT WHAT: the --json result says the move went through post-copy
switched() {
	assert_match "$2: the result says kind postcopy" '"kind":"postcopy"' "$1"
	assert_match "$2: QEMU was switched to post-copy" '"action":"(start-)?postcopy"' "$1"
}

# a guest writing its disk: the overlay crosses by the NBD mirror, not in QEMU's stream.
# A second loop rewrites 16 MiB of random data on the disk without pause, so the page cache
# stays dirty (pre-copy cannot finish before the switch) and the mirror has writes to carry.
h1 run -d --name disk -m 256M busybox sh -c \
	'(while true; do dd if=/dev/urandom of=/scratch bs=1M count=16 2>/dev/null; done) &
	 i=0; while true; do echo "w $i" >> /data.log; echo "w $i"; i=$((i+1)); sleep 0.1; done' >/dev/null
wait_num 1 disk "w " 5
sum1=$(blob_sum 1 disk)
assert_match "disk: the checksum of a fresh file was taken" "^[0-9a-f]{32}  /blob$" "$sum1"
b=$(last_num disk 1 "w ")
# a 1 ms downtime target keeps QEMU from finishing in pre-copy before the switch
out=$(migrate_to 1 2 disk --postcopy --max-downtime 1ms --json); rc=$?
echo "# disk: $out"
assert_eq "disk: migrate --postcopy exits 0" 0 "$rc"
switched "$out" disk
released_ok "$out" disk
moved 1 2 disk "w " "$b"
assert_eq "disk: a file written before the move is intact" "$sum1" "$(hgwt 60 2 exec disk md5sum /blob 2>&1)"
assert_match "disk: the disk log runs on without gap or repeat" "^ok [1-9][0-9]*$" "$(disk_log 2 disk)"
assert_true "disk: the guest kernel stayed healthy after post-copy" guest_healthy "$R2" disk
# and back, pre-copy: the destination's disk is a normal overlay again
b=$(last_num disk 2 "w ")
out=$(migrate_to 2 1 disk --no-postcopy); rc=$?
echo "# disk back (pre-copy): $out"
assert_eq "disk back: pre-copy migrate exits 0" 0 "$rc"
moved 2 1 disk "w " "$b"
assert_eq "disk back: the file is intact" "$sum1" "$(hgwt 60 1 exec disk md5sum /blob)"
assert_match "disk back: the disk log runs on without gap or repeat" "^ok [1-9][0-9]*$" "$(disk_log 1 disk)"
assert_true "disk: the guest kernel stayed healthy" guest_healthy "$R1" disk
h1 rm -f disk >/dev/null

sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
