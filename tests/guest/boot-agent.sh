#!/usr/bin/env bash
# Boot godwit-agent in QEMU (TCG) with a tiny busybox ext4 disk, run
# `/bin/sh -c 'echo hi; exit 7'` through the agent link, and assert that "hi" arrives on STDOUT
# and the exit status is 7; also a missing command must give 127. Reports boot-to-HELLO time.
# Env: BUILD (default build), KERNEL (vmlinuz | vmlinux, default vmlinuz), DEBUG=1.
# Needs: make build/godwit-agent guest.
set -euo pipefail

BUILD=${BUILD:-build}
KERNEL=${KERNEL:-vmlinuz}
dir=$(mktemp -d /tmp/godwit-boot.XXXXXX)
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

for f in "$BUILD/guest/$KERNEL" "$BUILD/guest/initrd.img"; do
	[ -f "$f" ] || { echo "boot-agent: $f missing (make guest)" >&2; exit 1; }
done

gcc -std=gnu11 -Wall -Wextra -Werror -O1 -Iinclude -D_GNU_SOURCE -o "$dir/agentctl" \
	tests/guest/agentctl.c src/common/frame.c src/common/link.c src/common/err.c -ljson-c

# The container disk: busybox-static with its applets as symlinks, plus passwd/group.
mkdir -p "$dir/root"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$dir/root/bin/busybox"
for app in $("$dir/root/bin/busybox" --list); do
	[ -e "$dir/root/bin/$app" ] || ln -s busybox "$dir/root/bin/$app"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/root/etc/passwd"
echo 'root:x:0:' >"$dir/root/etc/group"
mkfs.ext4 -q -F -d "$dir/root" "$dir/disk.img" 16M

append="console=ttyS0 quiet panic=-1"
[ "${DEBUG:-0}" = 1 ] && append="$append godwit.debug=1"

# run_vm NAME EXPECTED_STATUS argv...: boot, run argv, check the status; stdout in $dir/NAME.out
run_vm() {
	local name=$1 want=$2 rc=0
	shift 2
	rm -f "$dir/ag.sock"
	qemu-system-x86_64 -M pc -accel tcg -nodefaults -no-user-config -nographic -m 256 \
		-kernel "$BUILD/guest/$KERNEL" -initrd "$BUILD/guest/initrd.img" \
		-append "$append" -no-reboot -serial "file:$dir/$name.console" \
		-drive "file=$dir/disk.img,if=virtio,format=raw" \
		-device virtio-serial-pci \
		-chardev "socket,id=ag,path=$dir/ag.sock,server=on,wait=off" \
		-device virtserialport,chardev=ag,name=org.godwit.agent &
	qpid=$!
	"$dir/agentctl" "$dir/ag.sock" 60 "$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
	cat "$dir/$name.err" >&2
	# The agent powers the VM off after EXIT is acknowledged: QEMU must exit by itself.
	for _ in $(seq 100); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$qpid" 2>/dev/null; then
		echo "boot-agent: $name: QEMU did not power off" >&2
		cat "$dir/$name.console" >&2
		return 1
	fi
	wait "$qpid" || true
	qpid=
	if [ "$rc" != "$want" ]; then
		echo "boot-agent: $name: status $rc, want $want" >&2
		cat "$dir/$name.console" >&2
		return 1
	fi
}

run_vm echo 7 /bin/sh -c 'echo hi; exit 7'
grep -qx hi "$dir/echo.out" || { echo "boot-agent: no 'hi' on stdout" >&2; exit 1; }
hello=$(sed -n 's/^agentctl: hello after \([0-9]*\) ms.*/\1/p' "$dir/echo.err")

run_vm missing 127 no-such-command
grep -q 'ERROR chan 0:.*not found' "$dir/missing.err" ||
	{ echo "boot-agent: no ERROR for a missing command" >&2; exit 1; }

hello2=$(sed -n 's/^agentctl: hello after \([0-9]*\) ms.*/\1/p' "$dir/missing.err")
echo "boot-agent: PASS ($KERNEL, boot-to-HELLO ${hello} ms, ${hello2} ms under TCG)"
