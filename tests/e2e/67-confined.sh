#!/usr/bin/env bash
# QEMU's confinement (docs/security.md, "QEMU's confinement"): each container's QEMU runs as
# the user godwit-qemu, under its seccomp filter, PID 1 of a PID namespace of its own, in a
# mount namespace where the state root shows only its own files; its guest works all the
# same. A missing QEMU user is refused with a clear message.
. tests/lib/e2e.sh
ROOT=$(new_root)
gw load -i "$IMAGES/gwtest-oci.tar" >/dev/null
gw run -d --name a -m 192M gwtest counter 100 >/dev/null
gw run -d --name b -m 192M gwtest counter 100 >/dev/null
qpid() { pgrep -f -- "qemu-system.*$ROOT/containers/$1/" || true; }
PA=$(qpid a)
PB=$(qpid b)
assert_match "both QEMUs run" "^[0-9]+ [0-9]+$" "$PA $PB"
wait_for() { for _ in $(seq 1 300); do gw logs "$1" 2>/dev/null | grep -q "^counter 2" && return 0; sleep 0.2; done; return 1; }
assert_true "the confined guest runs its container" wait_for a
uid=$(id -u godwit-qemu)
assert_eq "QEMU runs as godwit-qemu (real, effective, saved, fs uid)" "$uid $uid $uid $uid" \
	"$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PA/status")"
assert_eq "QEMU has no supplementary group of root's" "" \
	"$(awk '/^Groups:/ { for (i = 2; i <= NF; i++) if ($i == 0) print $i }' "/proc/$PA/status")"
assert_eq "QEMU runs under its seccomp filter, without new privileges" "2 1" \
	"$(awk '/^Seccomp:/ { s = $2 } /^NoNewPrivs:/ { n = $2 } END { print s, n }' "/proc/$PA/status")"
assert_match "QEMU's command line asks for the sandbox" \
	"-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" \
	"$(tr '\0' ' ' <"/proc/$PA/cmdline")"
assert_eq "QEMU binds no socket of its own: the shim passes them" "" \
	"$(tr '\0' '\n' <"/proc/$PA/cmdline" | grep -E 'socket,.*path=')"
assert_true "QEMU has a mount namespace of its own" \
	test "$(readlink /proc/$PA/ns/mnt)" != "$(readlink /proc/self/ns/mnt)"
assert_true "QEMU has a PID namespace of its own" \
	test "$(readlink /proc/$PA/ns/pid)" != "$(readlink /proc/self/ns/pid)"
in_ns() { nsenter -t "$PA" -m -- "$@" 2>&1; }
assert_eq "its /proc shows one process, QEMU as PID 1" "1" \
	"$(in_ns ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ' | sed 's/ $//')"
assert_match "the state root shows only its containers/ and images/ (and its device nodes)" \
	"^(\.dev[0-9] )*containers images$" "$(in_ns ls -A "$ROOT" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "containers/ shows only its own" "a" "$(in_ns ls -A "$ROOT/containers")"
assert_eq "its directory shows only what QEMU opens (no config, status, logs or sockets)" \
	"disk.qcow2 vm" "$(in_ns ls -A "$ROOT/containers/a" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "images/ shows its base disk alone" "base.ext4" \
	"$(in_ns sh -c "ls -A '$ROOT'/images/*/")"
assert_match "the base disk is read-only there" "Read-only file system" \
	"$(in_ns sh -c "echo x >>'$(in_ns sh -c "ls -d '$ROOT'/images/*/")base.ext4'")"
as_qemu() { nsenter -t "$PA" -m -S "$uid" -G "$(id -g godwit-qemu)" -- "$@" 2>&1; }
assert_match "QEMU's user can write nothing new into the root" "Read-only file system|Permission denied" \
	"$(as_qemu touch "$ROOT/containers/planted")"
assert_match "QEMU's user cannot read the host's other containers (b's disk)" "No such file" \
	"$(as_qemu cat "$ROOT/containers/b/disk.qcow2")"
assert_eq "on the host, the container's own files stay root's (the console too: the shim writes it)" "root root root root" \
	"$(stat -c %U "$ROOT/containers/a/config.json" "$ROOT/containers/a/shim.log" \
		"$ROOT/containers/a/qmp.sock" "$ROOT/containers/a/console.log" | tr '\n' ' ' | sed 's/ $//')"
out=$(gw exec a echo inside 2>&1)
assert_eq "exec works through the passed agent socket" "inside" "$out"
gw rm -f a b >/dev/null

out=$(GODWIT_QEMU_USER=nosuchuser gw run --name c -m 192M gwtest echo hi 2>&1); rc=$?
assert_eq "a missing QEMU user: exit 125" 125 "$rc"
assert_match "a missing QEMU user: the message says so and what makes it" \
	"QEMU's user \"nosuchuser\" does not exist \(scripts/deps.sh makes godwit-qemu" "$out"
assert_eq "a missing QEMU user: no QEMU was left" "" "$(qpid c)"
finish
