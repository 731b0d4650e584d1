#!/usr/bin/env bash
# Early moves of a 2-vCPU guest (docs/migration.md, "Still broken"): BENCH_EARLY_N rounds
# (default 20), each a new busybox guest (`--cpus 2`, 256 MiB, appending a line to a file every
# 0.1 s, 16 MiB written and synced once) moved between the two test namespaces with the
# default policy ~4 s after its boot; the destination's console is read 4 s later. Prints how
# many destination kernels crashed (tests/lib/e2e.sh's guest_healthy) and each crash's first
# lines. Extra `migrate` flags: BENCH_EARLY_FLAGS; GODWIT_DEST_THP=1 GODWIT_MIG_VCPU_NICE=0
# turn the destination rules of docs/migration-policy.md off. Run from the checkout as root:
# bench/early-moves.sh (builds nothing: `make all guest` first).
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts
N=${BENCH_EARLY_N:-20}
bad=0 failed=0
for ((i = 1; i <= N; i++)); do
	h1 run -d --name e$i --cpus 2 -m 256M busybox sh -c \
		'i=0; while true; do echo "w $i" >> /data.log; echo "w $i"; i=$((i+1)); sleep 0.1; done' >/dev/null
	wait_num 1 "e$i" "w " 5
	h1 exec "e$i" sh -c 'dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null; sync' >/dev/null
	# shellcheck disable=SC2086
	if ! out=$(migrate_to 1 2 "e$i" ${BENCH_EARLY_FLAGS:-} 2>&1); then
		failed=$((failed + 1))
		echo "# round $i: the move failed: $out"
	fi
	sleep 4
	if ! why=$(guest_healthy "$(hroot 2)" "e$i"); then
		bad=$((bad + 1))
		echo "# round $i: $(head -n 2 <<<"$why" | tr '\n' ' ')"
	fi
	hgw 1 rm -f "e$i" >/dev/null 2>&1
	hgw 2 rm -f "e$i" >/dev/null 2>&1
done
echo "early 2-vCPU moves (flags: ${BENCH_EARLY_FLAGS:-none}; GODWIT_DEST_THP=${GODWIT_DEST_THP:-}" \
	"GODWIT_MIG_VCPU_NICE=${GODWIT_MIG_VCPU_NICE:-}): $bad of $N destination kernels crashed," \
	"$failed moves failed"
finish
