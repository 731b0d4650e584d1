#!/usr/bin/env bash
# The first moments after a migration's switch (issue 16: the pause a guest's output shows).
# Under TCG a destination QEMU starts with an empty translation cache: every guest code path
# that runs after the switch is translated before it runs, and the pause ends only when the
# guest's output has come through all of them. For BENCH_RUNS idle moves each of godwit (default
# policy) and bare QEMU (max-bandwidth BENCH_TUNED_BW), driven by bench/migrate.sh, this makes the
# destination QEMU log every block it translates (-d in_asm) with its resume and output events,
# and prints per move the ms from the resume to the first output byte (godwit: the agent's
# first bytes on its port; QEMU: the first byte its guest writes to the serial port) and the
# blocks translated in between, guest kernel and user apart (bench/bt.py tbs).
# The logging slows translation, so the times run longer than a plain move's; the counts do not.
# BENCH_RESUME_LOG=trace leaves the block log out and keeps only the events: the times are then
# a plain move's (no blocks counted).
# The destination QEMUs are started through a wrapper: godwit's by GODWIT_QEMU, the anchor's
# by PATH. Logs stay in $OUT/resume/.
# Usage: bench/resume.sh
source "$(dirname "$0")/lib.sh"
case ${BENCH_RESUME_LOG:=asm} in
asm) ASM="-d in_asm" ;;
trace) ASM="" ;;
*) echo "BENCH_RESUME_LOG: asm or trace, not '$BENCH_RESUME_LOG'" >&2; exit 2 ;;
esac
W=$(mktemp -d /tmp/godwit-resume.XXXXXX)
chmod 1777 "$W"
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT/resume"
cat >"$W/qemu-system-x86_64" <<EOF
#!/bin/sh
# only a destination (started -incoming) logs; QEMU runs as its own user: log into $W
case " \$* " in *" -incoming "*)
	exec /usr/bin/qemu-system-x86_64 "\$@" -msg timestamp=on $ASM -D "$W/log-\$(date +%s%N)" \\
		-trace enable=vm_state_notify -trace enable=virtio_console_flush_buf \\
		-trace enable=serial_write ;;
esac
exec /usr/bin/qemu-system-x86_64 "\$@"
EOF
chmod 755 "$W/qemu-system-x86_64"

one() { # KIND RUN: one move, then its destination's log summarised
	local kind=$1 log
	rm -f "$W"/log-*
	if [ "$kind" = godwit ]; then
		GODWIT_QEMU=$W/qemu-system-x86_64 BENCH_RUNS=1 BENCH_KINDS=godwit \
			BENCH_OUT="$OUT/resume" bench/migrate.sh idle >"$OUT/resume/migrate-$kind.out" 2>&1
	else
		PATH=$W:$PATH BENCH_RUNS=1 BENCH_KINDS=tuned BENCH_OUT="$OUT/resume" \
			bench/migrate.sh idle >"$OUT/resume/migrate-$kind.out" 2>&1
	fi
	local logs=("$W"/log-*) # the move's one destination
	log=${logs[0]}
	[ -e "$log" ] || { echo "$kind: no destination log (see $OUT/resume/migrate-$kind.out)"; return; }
	local keep=in_asm
	[ "$BENCH_RESUME_LOG" = trace ] && keep=events
	cp "$log" "$OUT/resume/$keep-$kind-$2.log"
	echo "$kind run $2: $(python3 "$BT" tbs "$log" "$BENCH_RESUME_LOG")"
}

if [ "$BENCH_RESUME_LOG" = asm ]; then
	echo "accelerator: $(accel); destination QEMUs log their translations (times run long)"
else
	echo "accelerator: $(accel); destination QEMUs log their resume and output events only"
fi
for i in $(seq "$BENCH_RUNS"); do
	one godwit "$i"
	one tuned "$i"
done
