#!/usr/bin/env bash
# Run each cmocka unit-test binary; print the skipped tests by name, then one summary line
# "unit: N passed, N failed, N skipped". A skip is not a pass.
set -u
pass=0 fail=0 skip=0
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	n_ok=$(grep -c '^\[       OK \]' <<<"$out")
	n_skip=$(grep -c '^\[  SKIPPED \]' <<<"$out")
	grep '^\[  SKIPPED \]' <<<"$out" | sed "s|^\[  SKIPPED \] *|skipped: $(basename "$t") |"
	pass=$((pass + n_ok)); skip=$((skip + n_skip))
	if [ "$rc" -ne 0 ]; then
		echo "$out" | grep -E 'FAILED|ERROR|Error|error' | head -n 20
		n_bad=$(grep -c '^\[  FAILED  \]' <<<"$out")
		[ "$n_bad" -eq 0 ] && n_bad=1
		fail=$((fail + n_bad))
		echo "FAILED: $t"
	fi
done
echo "unit: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
