#!/usr/bin/env bash
# Snapshot and restore: a guest writing and checking 64 MiB (gwtest memtest) is snapshotted while
# it runs and restored as a new container on a second root; it continues where it was (memory
# intact, iterations neither reset nor repeated, logs without a gap, its disk, exec, time). Then
# snapshot --stop -> restore hops back and forth, and damaged or unusable snapshot files, which
# must fail with exit 125, a clear message and nothing created.
. tests/lib/e2e.sh
A=$(new_root)
B=$(new_root)
C=$(new_root) # a host without the image
ga() { "$GODWIT" --root "$A" "$@"; }
gb() { "$GODWIT" --root "$B" "$@"; }
gc() { "$GODWIT" --root "$C" "$@"; }
on() { local r=$1; shift; "$GODWIT" --root "$r" "$@"; }
ga load -i "$IMAGES/gwtest-oci" >/dev/null
gb load -i "$IMAGES/gwtest-oci" >/dev/null
SNAPS=$(mktemp -d /tmp/godwit-e2e-snaps.XXXXXX)
MNT=""
cleanup() {
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null && rmdir "$MNT"
	rm -rf "$SNAPS"
	cleanup_roots
}
trap cleanup EXIT

iters() { on "$1" logs "$2" | sed -n 's/^memtest iter=\([0-9]*\) .*/\1/p'; }
last_iter() { iters "$1" "$2" | tail -n 1; }
# wait_past ROOT NAME N: until an iteration after N is logged (at most 30 s)
wait_past() {
	local i l
	for i in $(seq 300); do
		l=$(last_iter "$1" "$2")
		[ -n "$l" ] && [ "$l" -gt "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
# consecutive ROOT NAME: the log's iterations are 0, 1, 2, ... with no gap and no repeat
consecutive() {
	iters "$1" "$2" | awk 'BEGIN { e = 0 } $1 != e { print "at " e " got " $1; bad = 1; exit }
			       { e++ } END { if (!bad && e < 2) print "only " e " iterations"; }'
}
state_of() { on "$1" ps -a | awk -v n="$2" '$1 == n { print $3 }'; }

# ---- snapshot of a running container, restored on another root --------------------------
ga run -d --name mt -m 256M gwtest memtest 64 200 >/dev/null
wait_past "$A" mt 2
ga exec mt sh -c 'echo before > /srv/marker; sync'
out=$(ga snapshot mt "$SNAPS/s1.snap"); rc=$?
assert_eq "snapshot exits 0" 0 "$rc"
assert_match "snapshot reports size and time" "written to $SNAPS/s1.snap: [0-9.]+ MiB in [0-9.]+ s" "$out"
echo "# $out"
assert_true "the snapshot file exists" test -s "$SNAPS/s1.snap"
alloc=$(($(stat -c %b "$SNAPS/s1.snap") * $(stat -c %B "$SNAPS/s1.snap")))
assert_true "it is sparse: the guest's zero pages are holes ($alloc bytes allocated)" \
	test "$alloc" -lt "$(stat -c %s "$SNAPS/s1.snap")"
assert_eq "no temporary file is left" "" "$(ls "$SNAPS" | grep -v '^s1.snap$')"
at=$(last_iter "$A" mt)
assert_eq "the source runs on after a snapshot" running "$(state_of "$A" mt)"
assert_true "the source keeps iterating" wait_past "$A" mt "$at"
ga exec mt sh -c 'echo after > /srv/after; sync'

t0=$(date +%s%N)
out=$(gb restore "$SNAPS/s1.snap" --name mt2 2>&1); rc=$?
t1=$(date +%s%N)
assert_eq "restore exits 0 and prints the name" "0 mt2" "$rc $out"
saved=$(last_iter "$B" mt2)
wait_past "$B" mt2 "$saved"
t2=$(date +%s%N)
echo "# restore: command $(( (t1 - t0) / 1000000 )) ms, to the next iteration $(( (t2 - t0) / 1000000 )) ms"
assert_eq "the restored container runs" running "$(state_of "$B" mt2)"
assert_true "the restored guest continues past iteration $saved" wait_past "$B" mt2 "$saved"
assert_eq "its log continues without a gap or a repeat" "" "$(consecutive "$B" mt2)"
assert_true "its memory is intact (no CORRUPT)" bash -c "! '$GODWIT' --root '$B' logs mt2 | grep -q CORRUPT"
out=$(gb exec mt2 cat /srv/marker 2>&1)
assert_eq "a file written before the snapshot is on its disk" before "$out"
out=$(gb exec mt2 sh -c 'test -e /srv/after && echo present || echo absent' 2>&1)
assert_eq "a file written on the source after the snapshot is not" absent "$out"
s=$(date +%s%N)
gb exec mt2 sleep 1
ms=$(( ($(date +%s%N) - s) / 1000000 ))
assert_true "sleep 1 in the restored guest takes about 1 s ($ms ms)" test "$ms" -ge 800 -a "$ms" -le 3000
out=$(gb restore "$SNAPS/s1.snap" --name mt2 2>&1); rc=$?
assert_eq "restore onto a name in use: exit 125" 125 "$rc"
assert_match "restore onto a name in use: clear message" "already in use" "$out"
assert_eq "the container with that name is untouched" running "$(state_of "$B" mt2)"
# ---- the snapshot key: an HMAC made with it, checked with it ------------------------------
KEY=$SNAPS/key KEY2=$SNAPS/key2
head -c 32 /dev/urandom >"$KEY"
head -c 32 /dev/urandom >"$KEY2"
chmod 600 "$KEY" "$KEY2"
out=$(GODWIT_SNAPSHOT_KEY=$KEY ga snapshot mt "$SNAPS/keyed.snap" 2>&1); rc=$?
assert_eq "a snapshot with the host's key exits 0" 0 "$rc"
[ "$rc" == 0 ] || echo "# it said: $out"
out=$(GODWIT_SNAPSHOT_KEY=$KEY2 gb restore "$SNAPS/keyed.snap" --name k2 2>&1); rc=$?
assert_eq "restore under another key: exit 125" 125 "$rc"
assert_match "restore under another key: the HMAC does not match" \
	"keyed.snap: the snapshot's HMAC does not match this host's snapshot key" "$out"
out=$(GODWIT_SNAPSHOT_KEY=$KEY gb restore "$SNAPS/s1.snap" --name k3 2>&1); rc=$?
assert_eq "a host with a key refuses a snapshot without an HMAC: exit 125" 125 "$rc"
assert_match "... and says so" "the snapshot carries no HMAC" "$out"
assert_eq "refused keyed restores create nothing" "" "$(gb ps -aq | grep -E '^k[23]$')"
k_at=$(last_iter "$A" mt)
out=$(GODWIT_SNAPSHOT_KEY=$KEY gb restore "$SNAPS/keyed.snap" --name k1 2>&1); rc=$?
assert_eq "restore under the same key exits 0" "0 k1" "$rc $out"
assert_true "the keyed restore runs on" wait_past "$B" k1 "$((k_at > 0 ? k_at - 1 : 0))"
gb rm -f k1 >/dev/null
rm -f "$SNAPS/keyed.snap"
ga rm -f mt >/dev/null

# ---- snapshot --stop -> restore, back and forth -------------------------------------------
N=10
cur=mt2 croot=$B ok_hops=0
for i in $(seq "$N"); do
	nroot=$([ "$croot" == "$A" ] && echo "$B" || echo "$A")
	on "$croot" snapshot --stop "$cur" "$SNAPS/hop.snap" >/dev/null || break
	[ "$(state_of "$croot" "$cur")" == stopped ] || { echo "# hop $i: $cur not stopped"; break; }
	saved=$(last_iter "$croot" "$cur")
	on "$nroot" restore "$SNAPS/hop.snap" --name "hop$i" >/dev/null || break
	wait_past "$nroot" "hop$i" "$saved" || { echo "# hop $i: no iteration after $saved"; break; }
	on "$croot" rm "$cur" >/dev/null || break
	cur=hop$i croot=$nroot ok_hops=$i
done
assert_eq "$N hops of snapshot --stop and restore" "$N" "$ok_hops"
assert_eq "after $N hops the log is still gapless from iteration 0" "" "$(consecutive "$croot" "$cur")"
assert_true "after $N hops the memory is intact" bash -c "! '$GODWIT' --root '$croot' logs '$cur' | grep -q CORRUPT"
out=$(on "$croot" exec "$cur" cat /srv/marker 2>&1)
assert_eq "after $N hops the disk still has the file" before "$out"

# ---- a failing snapshot never damages an existing file, and the container runs on ---------
printf 'an existing file\n' >"$SNAPS/keep.snap"
mkdir "$SNAPS/keep.snap.tmp"
out=$(on "$croot" snapshot "$cur" "$SNAPS/keep.snap" 2>&1); rc=$?
assert_eq "snapshot that cannot write: exit 125" 125 "$rc"
assert_eq "the existing file is untouched" "an existing file" "$(cat "$SNAPS/keep.snap")"
rmdir "$SNAPS/keep.snap.tmp"
MNT=$(mktemp -d /tmp/godwit-e2e-mnt.XXXXXX)
if mount -t tmpfs -o size=8m tmpfs "$MNT" 2>/dev/null; then
	head -c 1000000 /dev/urandom >"$MNT/full.snap"
	sum=$(sha256sum <"$MNT/full.snap")
	out=$(on "$croot" snapshot "$cur" "$MNT/full.snap" 2>&1); rc=$?
	assert_eq "snapshot onto a full disk: exit 125" 125 "$rc"
	assert_match "snapshot onto a full disk: clear message" "snapshot $cur to $MNT/full.snap: " "$out"
	echo "# $out"
	assert_eq "the existing file is unchanged" "$sum" "$(sha256sum <"$MNT/full.snap")"
	assert_eq "nothing else is left on that disk" "full.snap" "$(ls -A "$MNT")"
else
	not_ok "the full-disk case: cannot mount an 8 MiB tmpfs on $MNT (the suite runs as root)"
	MNT=""
fi
at=$(last_iter "$croot" "$cur")
assert_eq "after a failed snapshot the container is running" running "$(state_of "$croot" "$cur")"
assert_true "after a failed snapshot it keeps iterating" wait_past "$croot" "$cur" "$at"
out=$(on "$croot" snapshot "$cur" relative/dir/x.snap 2>&1); rc=$?
assert_eq "snapshot into a missing directory: exit 125" 125 "$rc"
on "$croot" rm -f "$cur" >/dev/null
out=$(ga snapshot nosuch "$SNAPS/x.snap" 2>&1); rc=$?
assert_eq "snapshot of a missing container: exit 125" 125 "$rc"

# ---- damaged or unusable snapshot files ----------------------------------------------------
size=$(stat -c %s "$SNAPS/s1.snap")
nothing_made() { [ -z "$(on "$1" ps -aq)" ] && [ -z "$(ls -A "$1/containers" 2>/dev/null)" ]; }
try_bad() { # WHAT FILE REGEX
	local out rc
	out=$(gb restore "$2" --name bad 2>&1); rc=$?
	assert_eq "$1: exit 125" 125 "$rc"
	assert_match "$1: clear message" "$3" "$out"
	assert_true "$1: nothing created" nothing_made "$B"
}
head -c $((size - 4096)) "$SNAPS/s1.snap" >"$SNAPS/trunc.snap"
try_bad "a truncated snapshot" "$SNAPS/trunc.snap" "truncated snapshot"
head -c 5000 "$SNAPS/s1.snap" >"$SNAPS/short.snap"
try_bad "a snapshot cut short in its header" "$SNAPS/short.snap" "truncated snapshot"
cp "$SNAPS/s1.snap" "$SNAPS/flip.snap"
off=$((size / 2))
b=$(od -An -tu1 -j "$off" -N1 "$SNAPS/flip.snap" | tr -d ' ')
printf "$(printf '\\%03o' $(( (b ^ 1) & 255 )))" | dd of="$SNAPS/flip.snap" bs=1 seek="$off" conv=notrunc status=none
try_bad "a flipped byte" "$SNAPS/flip.snap" "checksum mismatch in section"
cp "$SNAPS/s1.snap" "$SNAPS/ver.snap"
printf '\x09' | dd of="$SNAPS/ver.snap" bs=1 seek=15 conv=notrunc status=none
try_bad "a wrong format version" "$SNAPS/ver.snap" "unsupported snapshot format version 9"
head -c 100000 /dev/urandom >"$SNAPS/junk.snap"
try_bad "not a snapshot" "$SNAPS/junk.snap" "not a godwit snapshot"
try_bad "a missing file" "$SNAPS/none.snap" "No such file"
out=$(gb restore --memory-max 64M "$SNAPS/s1.snap" --name big 2>&1); rc=$?
assert_eq "restore beyond --memory-max: exit 125" 125 "$rc"
assert_match "restore beyond --memory-max: says what it wants and what is allowed" \
	"the snapshot's container wants [0-9]+ MiB of memory; this host allows 64 MiB \(restore --memory-max\)" "$out"
assert_eq "restore beyond --memory-max: nothing created" "" "$(gb ps -aq | grep -x big)"
out=$(gc restore "$SNAPS/s1.snap" --name x 2>&1); rc=$?
assert_eq "restore without the image: exit 125" 125 "$rc"
assert_match "restore without the image: clear message" "image sha256:[0-9a-f]{64} .* is not on this host" "$out"
assert_true "restore without the image: nothing created" nothing_made "$C"

assert_eq "nothing listed at the end" "" "$(ga ps -aq)$(gb ps -aq)"
sleep 1
assert_eq "no QEMU or shim left running" "" "$(leftovers "$A")$(leftovers "$B")"
finish
