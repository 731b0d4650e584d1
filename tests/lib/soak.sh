# The migration soak (sourced after e2e.sh, netns.sh and moves.sh; used by tests/e2e/60-soak.sh
# and bench/soak.sh): one container running `gwtest soak` (tests/lib/gwsoak.c: a memory
# checker, a heartbeat "beat N", UNIX sockets (one bound by a relative path), a pty session,
# SysV shared memory, a semaphore and a message queue, a ptraced child, children of uids 1000
# and 1001, a TCP connection inside the guest, a tmpfs it mounted, a named volume it writes
# (run -v soakvol:/vol), open devices) moved back and forth between the two hosts, two moves
# with the default policy, two with --postcopy, and so on. After each move everything is
# checked; soak_move leaves the reasons it failed in SOAK_WHY (empty: all held).
SOAK=soak
SOAK_MIB=${SOAK_MIB:-64}	# the memory checker's size, rewritten every SOAK_MEM_MS
SOAK_MEM_MS=${SOAK_MEM_MS:-500}
SOAK_CONSOLE_RE='BUG|Oops|panic|corruption'
SOAK_RESOURCES=14	# the lines of `gwtest soakcheck`
SOAK_AT=1		# the host it runs on
SOAK_WHY=""
SOAK_LINE=""		# one line on the last move: what ran, its figures
SOAK_KIND="" SOAK_MS=""	# the last move's kind (live, postcopy) and total_ms, as migrate said
SOAK_SWITCHED=0		# moves that went through post-copy

soak_why() { SOAK_WHY="${SOAK_WHY:+$SOAK_WHY; }$*"; }

# soak_console HOST WHAT: the console of the soak's guest on HOST is clean
soak_console() {
	local bad
	bad=$(grep -aE -m 3 "$SOAK_CONSOLE_RE" "$(hroot "$1")/containers/$SOAK/console.log" 2>/dev/null |
		tr -d '\r' | tr '\n' '|')
	[ -z "$bad" ] || soak_why "$2 console: $bad"
}

# soak_held HOST: everything the guest holds is intact on HOST: its own checks (soakcheck),
# its output (the heartbeat without gap or repeat, no FAIL or CORRUPT line), its console
soak_held() {
	local check rc okn bad
	check=$(hgwt 60 "$1" exec "$SOAK" gwtest soakcheck 2>&1)
	rc=$?
	okn=$(grep -c '^ok ' <<<"$check")
	[ "$rc" -eq 0 ] && [ "$okn" -eq "$SOAK_RESOURCES" ] ||
		soak_why "soakcheck exit $rc, $okn of $SOAK_RESOURCES ok: $(grep -v '^ok ' <<<"$check" | tr '\n' '|')"
	bad=$(seq_ok "$1" "$SOAK" "beat ")
	[ -z "$bad" ] || soak_why "heartbeat not continuous: $bad"
	bad=$(hgw "$1" logs "$SOAK" 2>&1 | grep -aE -m 3 'FAIL|CORRUPT' | tr '\n' '|')
	[ -z "$bad" ] || soak_why "the guest reported: $bad"
	soak_console "$1" "h$1"
}

# soak_start: the soak container on h1, its resources all checked once
soak_start() {
	SOAK_WHY=""
	SOAK_AT=1
	h1 run -d --name "$SOAK" -m 256M -v soakvol:/vol gwtest soak "$SOAK_MIB" "$SOAK_MEM_MS" >/dev/null ||
		{ soak_why "run failed"; return 1; }
	wait_num 1 "$SOAK" "beat " 20 300 || soak_why "no heartbeat after start"
	# every checker writes its first status once its resource is set up (the memory checker
	# only after filling its MiB, slow under TCG): wait for all of them, at most 60 s, before
	# the first check; any other answer is checked as it is
	local until=$((SECONDS + 60))
	while hgwt 60 1 exec "$SOAK" gwtest soakcheck 2>&1 | grep -q 'no status' &&
		[ "$SECONDS" -lt "$until" ]; do
		sleep 1
	done
	[ -z "$SOAK_WHY" ] && soak_held 1
	[ -z "$SOAK_WHY" ] || { why_down 1 "$SOAK"; return 1; }
}

# soak_kind I: the migrate option of move I (1-based): moves 1-2 default policy, 3-4
# --postcopy, 5-6 default, ...; so each direction gets both
soak_kind() { if (( (($1 - 1) / 2) % 2 )); then echo --postcopy; fi; }

# soak_move I: move I from SOAK_AT to the other host, then check everything there; 0 when all
# held (SOAK_AT is then the destination), else 1 with SOAK_WHY. A move that failed leaves the
# container where it was (SOAK_AT unchanged).
soak_move() {
	local i=$1 from=$SOAK_AT to=$((3 - SOAK_AT)) kind out rc b now t0 secs
	kind=$(soak_kind "$i")
	SOAK_WHY="" SOAK_KIND="" SOAK_MS=""
	b=$(last_num "$SOAK" "$from" "beat ")
	t0=$(date +%s%N)
	# a --postcopy move also gets a 1 ms downtime target: a quiet guest's pre-copy would
	# otherwise complete within the first pass, before the switch (as 55-postcopy-disk does)
	out=$(migrate_to "$from" "$to" "$SOAK" --json ${kind:+"$kind" --max-downtime 1ms})
	rc=$?
	secs=$(( ($(date +%s%N) - t0) / 1000000 ))
	SOAK_LINE="move $i h$from→h$to ${kind:-default}: rc $rc"
	if [ "$rc" -ne 0 ]; then
		soak_why "migrate exited $rc: $(tail -n 3 <<<"$out" | tr '\n' '|')"
		why_down "$from" "$SOAK"
		why_down "$to" "$SOAK"
		return 1
	fi
	local k t d
	k=$(sed -n 's/.*"kind":"\([a-z]*\)".*/\1/p' <<<"$out")
	t=$(sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p' <<<"$out")
	SOAK_KIND=$k SOAK_MS=$t
	d=$(sed -n 's/.*"downtime_ms":\([0-9]*\).*/\1/p' <<<"$out")
	SOAK_LINE="$SOAK_LINE, $k, ${t:-?} ms (downtime ${d:-?} ms), ${secs} ms with the incoming"
	# a --postcopy move whose guest was quiet may still complete in pre-copy (QEMU finishes
	# when what is left fits the downtime): its kind is counted (SOAK_SWITCHED), not failed
	[ "$k" = postcopy ] || [ "$k" = live ] || soak_why "migrate reported kind '$k'"
	[ "$k" != postcopy ] || SOAK_SWITCHED=$((SOAK_SWITCHED + 1))
	# the source: a tombstone, nothing running, a clean console; then the tombstone goes
	local re="^$SOAK +[a-z]+ +migrated "
	[[ "$(hgw "$from" ps -a | grep "^$SOAK ")" =~ $re ]] ||
		soak_why "the source does not show it migrated"
	[ -z "$(shim_pid_of "$from" "$SOAK")$(qemu_pid_of "$from" "$SOAK")" ] ||
		soak_why "the source's shim or QEMU is left"
	soak_console "$from" "source h$from"
	hgw "$from" rm "$SOAK" >/dev/null || soak_why "the source's record cannot be removed"
	SOAK_AT=$to
	re="^$SOAK +[a-z]+ +running "
	[[ "$(hgw "$to" ps | grep "^$SOAK ")" =~ $re ]] ||
		soak_why "the destination does not show it running"
	# the heartbeat goes on (a beat every ~20 ms: 25 more within 60 s)
	wait_num "$to" "$SOAK" "beat " $((b + 25)) 300 || soak_why "the heartbeat stopped"
	now=$(last_num "$SOAK" "$to" "beat ")
	SOAK_LINE="$SOAK_LINE, beat $b → ${now:-?}"
	soak_held "$to"
	[ -z "$SOAK_WHY" ] || { why_down "$to" "$SOAK"; return 1; }
}
