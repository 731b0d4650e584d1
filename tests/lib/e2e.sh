# Helpers for end-to-end tests (sourced). Each test file is a bash script that drives the real
# godwit binary; assertions count into PASS/FAIL and the file's last line reports them.
set -u
GODWIT=${GODWIT:-$PWD/${BUILD:-build}/godwit}
IMAGES=${GODWIT_TEST_IMAGES:-$PWD/${BUILD:-build}/test-images}
PASS=0
FAIL=0
TEST_NAME=$(basename "$0" .sh)

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() {
	FAIL=$((FAIL + 1))
	echo "not ok - $*"
	crash_reports
	shim_reports
}

# At a failed assertion, a sanitizer's report or a shim's last words (any shim log in this
# test's roots that names an error) go into the output once each: CI keeps only the output.
SHIM_LOGS_SEEN=""
shim_reports() {
	local r f
	for r in $(cat "$ROOTS_FILE" 2>/dev/null); do
		for f in "$r"/containers/*/shim.log; do
			[ -s "$f" ] && [[ " $SHIM_LOGS_SEEN " != *" $f "* ]] || continue
			grep -aqE 'Sanitizer|runtime error|Assertion' "$f" || continue
			SHIM_LOGS_SEEN="$SHIM_LOGS_SEEN $f"
			echo "# shim log ${f#"$r"/containers/}:"
			grep -aE -A 30 -m 1 'Sanitizer|runtime error|Assertion' "$f" | head -n 40 |
				sed 's/^/#   /'
		done
	done
}

# At a failed assertion, every guest (in this test's roots) whose console shows a kernel crash,
# or that runs but has gone silent, is named once, with the oops's RIP and call trace: the
# evidence stays in the output. A crashed guest is a failure like any other.
CRASH_RE='BUG:|Oops|list_add corruption|list_del corruption|Kernel panic|general protection fault|NX-protected|corruption'
CRASHES_SEEN=""
crash_reports() {
	local r f line n age
	for r in $(cat "$ROOTS_FILE" 2>/dev/null); do
		for f in "$r"/containers/*/console.log; do
			[ -f "$f" ] && [[ " $CRASHES_SEEN " != *" $f "* ]] || continue
			line=$(grep -aE -m 1 "$CRASH_RE" "$f") || continue
			CRASHES_SEEN="$CRASHES_SEEN $f"
			echo "# guest kernel crash: ${f#"$r"/containers/}: $line"
			grep -aE -A 40 -m 1 "$CRASH_RE" "$f" | grep -aE 'RIP:|^\[ *[0-9.]+\]  [a-z_0-9.]+\+0x' |
				head -n 16 | sed 's/^/#   /'
		done
		# a kernel that hangs says nothing (the guest runs with nowatchdog): a running
		# guest whose output stopped for 30 s is named too
		for n in $("$GODWIT" --root "$r" ps 2>/dev/null | awk 'NR > 1 && $3 == "running" { print $1 }'); do
			f=$r/containers/$n/output.log
			[ -s "$f" ] && [[ " $CRASHES_SEEN " != *" $f "* ]] || continue
			age=$(( $(date +%s) - $(stat -c %Y "$f") ))
			[ "$age" -ge 30 ] || continue
			CRASHES_SEEN="$CRASHES_SEEN $f"
			echo "# guest silent: $n: running, no output for $age s"
		done
	done
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1: expected [$2], got [$3]"; fi
}
# assert_match WHAT REGEX ACTUAL
assert_match() {
	if [[ "$3" =~ $2 ]]; then ok "$1"; else not_ok "$1: [$3] does not match /$2/"; fi
}
assert_true() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

# A fresh state root (a "host"); removed with everything it runs at exit. Called as
# ROOT=$(new_root), i.e. in a subshell: the list of roots lives in a file.
ROOTS_FILE=$(mktemp /tmp/godwit-e2e-roots.XXXXXX)
new_root() {
	local r
	r=$(mktemp -d /tmp/godwit-e2e.XXXXXX)
	echo "$r" >>"$ROOTS_FILE"
	echo "$r"
}
cleanup_roots() {
	local r
	for r in $(cat "$ROOTS_FILE"); do
		for n in $(GODWIT_ROOT=$r "$GODWIT" ps -aq 2>/dev/null); do
			GODWIT_ROOT=$r "$GODWIT" rm -f "$n" >/dev/null 2>&1
		done
		rm -rf "$r"
	done
	rm -f "$ROOTS_FILE"
}
trap cleanup_roots EXIT

gw() { "$GODWIT" --root "$ROOT" "$@"; }

# Processes (shim or QEMU) that still mention a root: none may be left behind.
leftovers() { pgrep -f -- "$1" | grep -v "^$$\$" || true; }

# The guest kernel's own word on its health: no oops, BUG, panic or corruption on the console
# (kernel messages only go there); a missing console is no word at all, so it fails too.
# guest_healthy ROOT NAME
guest_healthy() {
	local bad
	if [ ! -f "$1/containers/$2/console.log" ]; then
		echo "# console: $1/containers/$2/console.log is missing"
		return 1
	fi
	bad=$(grep -aE -m 5 "$CRASH_RE" "$1/containers/$2/console.log")
	[ -z "$bad" ] && return 0
	echo "$bad" | sed 's/^/# console: /'
	return 1
}

finish() {
	echo "$TEST_NAME: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}
