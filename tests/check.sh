#!/usr/bin/env bash
# The whole suite: cmocka unit tests, then every end-to-end test file; one closing line
# "N passed, N failed" with the totals. Every file runs once: a failure counts as it is.
set -u
BUILD=${BUILD:-build}
pass=0 fail=0 skip=0
count() { # reads "...: N passed, M failed[, K skipped]" lines
	local line p f k
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' <<<"$1" | tail -n 1)
	p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	k=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
	pass=$((pass + ${p:-0})); fail=$((fail + ${f:-1})); skip=$((skip + ${k:-0}))
}
out=$(tests/run-unit.sh "$BUILD"/tests/test_* 2>&1); echo "$out"; count "$out"
tests/lib/mkimages.sh "$BUILD/test-images" >/dev/null || { echo "building test images failed"; fail=$((fail + 1)); }
run_e2e() {
	start=$(date +%s)
	out=$(BUILD=$BUILD timeout 900 bash "$1" 2>&1)
	rc=$?
	echo "$out" | grep -E '^(not ok|ok|skip|# )|passed' | sed 's/^/  /'
	echo "  ($(( $(date +%s) - start )) s, exit $rc)"
}
for t in ${E2E:-tests/e2e/[0-9]*.sh}; do
	echo "== $t"
	run_e2e "$t"
	if ! grep -qE '[0-9]+ passed, [0-9]+ failed' <<<"$out"; then
		echo "$out" | tail -n 20
		fail=$((fail + 1))
	else
		count "$out"
	fi
done
# skips are not passes: counted, and named above ("skipped: ..." / "skip - ...")
echo "$skip skipped"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
