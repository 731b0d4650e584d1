#!/usr/bin/env bash
# Run each cmocka unit-test binary; print one summary line "unit: N passed, N failed".
set -u
pass=0 fail=0
for t in "$@"; do
	if out=$("$t" 2>&1); then
		n=$(grep -c '^\[       OK \]' <<<"$out")
		pass=$((pass + n))
	else
		echo "$out" | grep -E 'FAILED|ERROR|Error|error' | head -n 20
		n_ok=$(grep -c '^\[       OK \]' <<<"$out")
		n_bad=$(grep -c '^\[  FAILED  \]' <<<"$out")
		[ "$n_bad" -eq 0 ] && n_bad=1
		pass=$((pass + n_ok)); fail=$((fail + n_bad))
		echo "FAILED: $t"
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
