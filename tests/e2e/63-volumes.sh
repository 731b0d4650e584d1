#!/usr/bin/env bash
# Named volumes (docs/volumes.md): made, listed and removed; mounted by `run -v` (made if
# missing, read-only with :ro); kept when their container goes; moved with their container,
# live and post-copy, between two hosts (network namespaces, tests/lib/netns.sh): what the
# container wrote to them before and during the move is there on the destination, the source
# keeps no copy, and a destination that has a volume of that name refuses the move before
# anything is made, the source running on. Bad input (a bad name or size, a host directory,
# a relative path, a volume twice or in use, a snapshot) is a clear error that makes nothing.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts

# bad_input WHAT REGEX CMD...: exit 125 with REGEX on stderr
bad_input() {
	local what=$1 re=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	assert_eq "$what: refused (exit 125)" 125 "$rc"
	assert_match "$what: says why" "$re" "$out"
}

# 1. bad input, nothing made
bad_input "a volume name with a slash" "invalid volume name" h1 volume create 'a/b'
bad_input "a volume of 1 KiB" "want whole MiB from 16M to 1T" h1 volume create tiny --size 1k
bad_input "a host directory" "host directories cannot be mounted.*named volume" \
	h1 run -v /tmp:/data busybox true
bad_input "a relative path in the container" "must be absolute" h1 run -v d:data busybox true
bad_input "a path with .." "must be absolute, not \"/\", without \".\", \"..\"" \
	h1 run -v d:/a/../etc busybox true
bad_input "one volume twice" "volume d given twice" h1 run -v d:/a -v d:/b busybox true
bad_input "five volumes" "more than 4 volumes" \
	h1 run -v a:/a -v b:/b -v c:/c -v d:/d -v e:/e busybox true
bad_input "rm of no such volume" "no volume nosuch" h1 volume rm nosuch
assert_eq "bad input: no volume made" "NAME SIZE USED BY" "$(h1 volume ls | tr -s ' ')"
assert_eq "bad input: no container made" "" "$(h1 ps -aq)"

# 2. made, listed; a second of the name refused
assert_eq "volume create prints the name" "data" "$(h1 volume create data --size 64M)"
bad_input "a volume made twice" "volume data already exists" h1 volume create data
assert_match "volume ls lists it, unused" "^data +64M +-$" "$(h1 volume ls | grep '^data ')"

# 3. a container writes to two volumes (the second made by run, 1G): a 2 MiB blob and its
# checksum, then a numbered line a tenth of a second on the volume and on its output
h1 run -d --name vol -m 256M -v data:/data -v logs:/logs/app busybox sh -c \
	'dd if=/dev/urandom of=/data/blob bs=1k count=2048 2>/dev/null; md5sum /data/blob >/data/blob.md5
	 i=0; while true; do echo "v $i" >>/logs/app/seq; echo "v $i"; i=$((i+1)); sleep 0.1; done' >/dev/null
wait_num 1 vol "v " 5 300
assert_match "run -v made the missing volume (1G)" "^logs +1G +vol$" "$(h1 volume ls | grep '^logs ')"
assert_match "volume ls names the container" "^data +64M +vol$" "$(h1 volume ls | grep '^data ')"
assert_match "the guest has the volume on its path, ext4" "^/dev/vd[b-e] on /logs/app type ext4 " \
	"$(h1 exec vol mount | grep ' /logs/app ')"
bad_input "rm of a volume in use" "volume data is used by container vol" h1 volume rm data
bad_input "a second container on the volume" "volume data is used by container vol" \
	h1 run --rm -v data:/d busybox true
bad_input "a snapshot of a container with volumes" "snapshots do not carry volumes" \
	h1 snapshot vol "$(hroot 1)/vol.snap"
assert_eq "the refused snapshot left no file" "" "$(ls "$(hroot 1)"/vol.snap* 2>/dev/null)"

# vol_ok HOST WHAT: the blob intact and the volume's numbered lines without gap or repeat
vol_ok() {
	assert_eq "$2: the blob on the volume is intact" "/data/blob: OK" \
		"$(hgwt 60 "$1" exec vol md5sum -c /data/blob.md5 2>&1)"
	assert_match "$2: the volume's lines run on without gap or repeat" "^ok [0-9]+$" \
		"$(hgwt 60 "$1" exec vol awk 'BEGIN { n = 0 } $2 != n { print "line " NR ": " $0; bad = 1; exit }
			{ n++ } END { if (!bad) print "ok " n }' /logs/app/seq 2>&1)"
}
vol_ok 1 "before the moves"

# 4. live move h1 → h2
b=$(last_num vol 1 "v ")
out=$(migrate_to 1 2 vol); rc=$?
echo "# live: $out"
assert_eq "live: migrate exits 0" 0 "$rc"
moved 1 2 vol "v " "$b"
vol_ok 2 "live"
n=$(hgwt 60 2 exec vol wc -l /logs/app/seq | awk '{ print $1 }')
assert_true "live: lines written on the source and the destination are on the volume ($n > $b)" \
	test "${n:-0}" -gt "$((b + 3))"
assert_eq "live: the source keeps no copy of the volumes" "NAME SIZE USED BY" "$(h1 volume ls | tr -s ' ')"
assert_match "live: the destination has them" "^data +64M +vol logs +1G +vol$" \
	"$(h2 volume ls | tail -n +2 | tr -s ' ' | paste -sd ' ')"

# 5. a destination with a volume of that name refuses before anything is made
h1 volume create logs --size 32M >/dev/null
out=$(migrate_to 2 1 vol); rc=$?
echo "# refused: $out"
assert_eq "volume on the destination: migrate fails (exit 125)" 125 "$rc"
assert_match "volume on the destination: says why" "volume-exists: volume logs exists on this host already" "$out"
assert_match "volume on the destination: the source runs on" "^vol +[^ ]+ +running " "$(h2 ps | grep '^vol ')"
wait_num 2 vol "v " $(($(last_num vol 2 "v ") + 3)) 300
assert_eq "volume on the destination: its own volume untouched, nothing else made there" \
	"NAME SIZE USED BY logs 32M -" "$(h1 volume ls | tr -s ' ' | paste -sd ' ')"
assert_eq "volume on the destination: no container record left there" "" "$(h1 ps -aq)"
h1 volume rm logs >/dev/null

# 6. post-copy move back h2 → h1
b=$(last_num vol 2 "v ")
out=$(migrate_to 2 1 vol --postcopy); rc=$?
echo "# post-copy: $out"
assert_eq "post-copy: migrate exits 0" 0 "$rc"
moved 2 1 vol "v " "$b"
vol_ok 1 "post-copy"
assert_eq "post-copy: the source keeps no copy of the volumes" "NAME SIZE USED BY" "$(h2 volume ls | tr -s ' ')"

# 7. the container goes, its volumes stay; a new container reads them
h1 rm -f vol >/dev/null
assert_eq "rm: the volumes stay, unused" "data 64M - logs 1G -" \
	"$(h1 volume ls | tail -n +2 | tr -s ' ' | paste -sd ' ')"
last=$(h1 run --rm -v logs:/l:ro busybox tail -n 1 /l/seq)
assert_match "a new container reads the volume: its last line" "^v [0-9]+$" "$last"
out=$(h1 run --rm -v logs:/l:ro busybox sh -c 'echo x >/l/new' 2>&1)
assert_match ":ro mounts it read-only" "Read-only file system" "$out"
assert_eq "volume rm removes both" "data logs" "$(h1 volume rm data logs | paste -sd ' ')"
assert_eq "volume rm: none left" "NAME SIZE USED BY" "$(h1 volume ls | tr -s ' ')"
finish
