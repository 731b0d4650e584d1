#!/usr/bin/env bash
# A container moves from a host with an older QEMU to one with a newer QEMU, and keeps its
# machine type (docs/qemu.md, "Machine type"). Host 1 runs Debian 12's own QEMU 7.2, unpacked
# by tests/lib/oldqemu.sh; host 2 the installed one (10.0 from bookworm-backports). Under TCG
# the 7.2 source refuses a live move with the reason (it loses guest writes in TCG
# migration), moves the container --offline, and the container then moves live between two
# hosts on the installed QEMU with its 7.2 machine type.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts
OLD=$PWD/${BUILD:-build}/qemu-7.2
if ! out=$(tests/lib/oldqemu.sh "$OLD" 2>&1); then
	not_ok "Debian 12's QEMU 7.2 unpacked into $OLD: $out"
	finish
	exit 1
fi
cmdline() { tr '\0' ' ' <"/proc/$(qemu_pid_of "$1" "$2")/cmdline" 2>&1; }

out=$(GODWIT_QEMU=$OLD/qemu h1 info)
assert_match "info names QEMU 7.2 and its machine type" "qemu: +7\.2\.[0-9]+ .*machine: +pc-i440fx-7\.2" \
	"$(tr '\n' ' ' <<<"$out")"
if [ "$(awk '/^accelerator:/ { print $2 }' <<<"$out")" = tcg ]; then
	assert_match "info: live moves refused under TCG on QEMU 7.2" "live moves: refused" "$out"
fi
GODWIT_QEMU=$OLD/qemu h1 run -d --name old -m 192M gwtest counter 100 >/dev/null
wait_num 1 old "counter " 5
assert_match "the container runs on QEMU 7.2 with the 7.2 machine type" \
	"qemu-7\.2/root/usr/bin/qemu-system-x86_64 .*-machine pc-i440fx-7\.2 " "$(cmdline 1 old)"
if [ "$(awk '/^accelerator:/ { print $2 }' <<<"$out")" = tcg ]; then
	out=$(migrate_to 1 2 old); rc=$?
	assert_eq "live move from QEMU 7.2 under TCG: refused, exit 125" 125 "$rc"
	assert_match "live move from QEMU 7.2 under TCG: says why and what works" \
		"needs QEMU 9\.0 or newer: this container runs on QEMU 7\.2.*--offline" "$out"
	assert_match "the refused move leaves the container running on h1" "^old +[a-z]+ +running " \
		"$(h1 ps | grep '^old ')"
	h2 rm -f old >/dev/null
fi
b=$(last_num old 1 "counter ")
out=$(migrate_to 1 2 old --offline); rc=$?
echo "# 7.2 → installed, offline: $out"
assert_eq "offline move from QEMU 7.2 to the installed QEMU exits 0" 0 "$rc"
moved 1 2 old "counter " "$b"
assert_match "the destination's newer QEMU runs the container's 7.2 machine type" \
	"^qemu-system-x86_64 .*-machine pc-i440fx-7\.2 " "$(cmdline 2 old)"
# and on between two hosts on the installed QEMU, live
b=$(last_num old 2 "counter ")
out=$(migrate_to 2 1 old); rc=$?
echo "# installed → installed, live: $out"
assert_eq "live move of the 7.2-machine container between newer QEMUs exits 0" 0 "$rc"
moved 2 1 old "counter " "$b"
assert_match "it keeps its machine type" "-machine pc-i440fx-7\.2 " "$(cmdline 1 old)"
assert_eq "exec works after both moves" "alive" "$(hgwt 60 1 exec old gwtest echo alive 2>&1)"
assert_true "the guest kernel stayed healthy" guest_healthy "$R1" old
h1 rm -f old >/dev/null

sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
