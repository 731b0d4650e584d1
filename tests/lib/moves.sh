# Helpers for end-to-end tests that move containers (sourced after e2e.sh and netns.sh):
# read the numbered lines a guest prints and check that they run on without gap or repeat.

# last_num NAME HOST PREFIX: the last number printed after PREFIX in NAME's logs on HOST
last_num() { hgw "$2" logs "$1" 2>/dev/null | sed -n "s/^$3\([0-9][0-9]*\).*/\1/p" | tail -n 1; }
# seq_ok HOST NAME PREFIX: the numbers after PREFIX run 0,1,2,... with no gap or repeat
seq_ok() {
	hgw "$1" logs "$2" | sed -n "s/^$3\([0-9][0-9]*\).*/\1/p" |
		awk 'BEGIN { n = 0 } $1 != n { print "at line " NR ": expected " n ", got " $1; bad = 1; exit }
		     { n++ } END { if (!bad && n < 2) { print "only " n " lines"; bad = 1 } exit bad }'
}
# wait_num HOST NAME PREFIX MIN [TRIES]: wait until the last number is at least MIN
wait_num() {
	local i v
	for ((i = 0; i < ${5:-100}; i++)); do
		v=$(last_num "$2" "$1" "$3")
		[ -n "$v" ] && [ "$v" -ge "$4" ] && return 0
		sleep 0.2
	done
	return 1
}

# why_down HOST NAME: what HOST knows of NAME, for the record when a move loop breaks off: its
# ps row, the shim's last words, the console's last kernel lines
why_down() {
	local d; d=$(hroot "$1")/containers/$2
	echo "# h$1 $2: $(hgw "$1" ps -a | grep "^$2 ")"
	[ -f "$d/shim.log" ] && tail -n 8 "$d/shim.log" | sed "s/^/# h$1 shim.log: /"
	[ -f "$d/console.log" ] && tail -n 8 "$d/console.log" | tr -d '\r' | sed "s/^/# h$1 console: /"
	return 0
}

# two_hosts: the namespaces up and both test images on both hosts (or the test ends)
two_hosts() {
	netns_setup || { not_ok "network namespaces (need root and iproute2)"; finish; exit 1; }
	local h
	for h in 1 2; do
		hgw $h load -i "$IMAGES/gwtest-oci" >/dev/null
		hgw $h load -i "$IMAGES/busybox-docker.tar" >/dev/null
	done
}

# moved FROM TO NAME PREFIX BEFORE: everything that must hold after NAME moved FROM → TO,
# BEFORE being the last number seen on the source just before the move
moved() {
	local from=$1 to=$2 name=$3 prefix=$4 before=$5 what="$3 h$1→h$2"
	assert_match "$what: source record shows migrated" "^$name +[a-z]+ +migrated " \
		"$(hgw "$from" ps -a | grep "^$name ")"
	assert_eq "$what: source shim and QEMU gone" "" "$(shim_pid_of "$from" "$name")$(qemu_pid_of "$from" "$name")"
	assert_match "$what: destination ps shows it running" "^$name +[a-z]+ +running " \
		"$(hgw "$to" ps | grep "^$name ")"
	local pid; pid=$(shim_pid_of "$to" "$name")
	assert_eq "$what: destination shim runs in h$to's namespace" "$(ns_inode "$(hns "$to")")" \
		"$(proc_netns "$pid")"
	wait_num "$to" "$name" "$prefix" $((before + 3)) 300
	local now; now=$(last_num "$name" "$to" "$prefix")
	assert_true "$what: counter continues on the destination ($before → $now)" \
		test "${now:-0}" -ge $((before + 3))
	local bad; bad=$(seq_ok "$to" "$name" "$prefix")
	assert_eq "$what: logs continuous (no gap, no repeat)" "" "$bad"
	# the source's `migrated` record is a tombstone: removing it frees the name there
	hgw "$from" rm "$name" >/dev/null
	assert_eq "$what: the source's record can be removed" "" "$(hgw "$from" ps -aq | grep -x "$name")"
}

# kernel_ok HOST NAME WHAT: the guest kernel's console is clean after a fast-dirtying guest
# moved.
kernel_ok() {
	assert_true "$3: the guest kernel stayed healthy" guest_healthy "$(hroot "$1")" "$2"
}

# disk_log HOST NAME: "ok N" when the N lines of NAME's /data.log (written "w 0", "w 1", ...)
# run on without gap or repeat; else the first bad line, or exec's own error
disk_log() {
	hgwt 60 "$1" exec "$2" awk 'BEGIN { n = 0 } $2 != n { print "line " NR ": " $0; bad = 1; exit }
		{ n++ } END { if (!bad) print "ok " n }' /data.log 2>&1
}
# blob_sum HOST NAME: write 16 MiB of random data to NAME's /blob, sync, print its md5sum
# line ("<32 hex>  /blob"); the caller checks the line's form, so a failed exec cannot pass
blob_sum() {
	hgwt 60 "$1" exec "$2" sh -c 'dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null; sync; md5sum /blob' 2>&1
}
# released_ok JSON WHAT: migrate --json's result says when the destination released the
# guest's held output (held_reads, held_output_released; with held reads, the first one's
# arrival held_output_first_rx, no later than the release)
released_ok() {
	local rel first n
	rel=$(sed -n 's/.*"held_output_released": *"\([^"]*\)".*/\1/p' <<<"$1")
	n=$(sed -n 's/.*"held_reads": *\([0-9][0-9]*\).*/\1/p' <<<"$1")
	first=$(sed -n 's/.*"held_output_first_rx": *"\([^"]*\)".*/\1/p' <<<"$1")
	assert_match "$2: the result says when the held output was released" \
		"^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z$" "$rel"
	echo "# $2: ${n:-?} held reads, the first at ${first:--}, released at ${rel:--}"
	if [ "${n:-0}" -gt 0 ]; then
		assert_true "$2: the first held output arrived before its release" \
			test -n "$first" -a ! "$first" \> "$rel"
	else
		assert_eq "$2: no held reads, no first arrival" "" "$first"
	fi
}

# bg_move NAME ARGS...: incoming NAME on h2, then `migrate ARGS NAME` from h1 in the background:
# its pid in $MIG, its output in the file $MOUT
MOUT=$(mktemp)
echo "$MOUT" >>"$ROOTS_FILE"
bg_move() {
	local name=$1
	shift
	PORT=$((PORT + 1))
	h2 incoming --name "$name" --listen "tcp:$H2_IP:$PORT" --insecure >/dev/null
	h1 migrate "$@" "$name" "tcp:$H2_IP:$PORT" >"$MOUT" 2>&1 &
	MIG=$!
}
# status_is NAME PATTERN [TRIES]: wait (TRIES x 0.2 s, 30 s by default) until h1's
# `migrate --status NAME` matches
status_is() {
	local i
	for ((i = 0; i < ${3:-150}; i++)); do
		h1 migrate --status "$1" 2>/dev/null | grep -Eq "$2" && return 0
		sleep 0.2
	done
	return 1
}
# dest_empty WHAT: nothing of the move left on h2 (record, shim, QEMU)
dest_empty() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -z "$(h2 ps -aq)$(leftovers "$R2")" ] && break
		sleep 0.2
	done
	assert_eq "$1: nothing left on the destination" "" "$(h2 ps -aq)$(leftovers "$R2")"
}
