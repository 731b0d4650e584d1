#!/usr/bin/env bash
# `make bench`: every benchmark, each printing markdown tables with its anchor beside it.
# Each VM job takes /tmp/godwit-vm.lock on its own (set GODWIT_VM_LOCK_HELD=1 if the caller
# already holds it). Env: BENCH_RUNS (default 3), BENCH_NET (netns|loopback), BUILD.
# Output also goes to $BUILD/bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-${BUILD:-build}/bench}
mkdir -p "$out"
{
	echo "## godwit benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), BENCH_RUNS=${BENCH_RUNS:-3}"
	echo "host: $(nproc) cores, $(uname -r), $(qemu-system-x86_64 --version | head -1)"
	bench/boot.sh
	bench/migrate.sh
	bench/snapshot.sh
	bench/network.sh
} 2>&1 | tee "$out/results.md"
