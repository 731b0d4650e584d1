#!/usr/bin/env bash
# Images: load both formats, list, remove; every kind of bad archive is refused with a clear
# message and exit 125, leaving the store as it was. No VM needed.
. tests/lib/e2e.sh
ROOT=$(new_root)

out=$(gw load -i "$IMAGES/busybox-docker.tar" 2>&1); rc=$?
assert_eq "load docker-archive exits 0" 0 "$rc"
assert_match "load docker-archive names the image" "Loaded image: busybox:latest" "$out"
out=$(gw load -i "$IMAGES/gwtest-oci" 2>&1); rc=$?
assert_eq "load OCI layout dir exits 0" 0 "$rc"
assert_match "load OCI dir names the image" "gwtest:latest" "$out"
out=$(gw load -i "$IMAGES/gwtest-oci.tar" 2>&1); rc=$?
assert_eq "load OCI layout tar exits 0" 0 "$rc"

out=$(gw images)
assert_match "images lists busybox with a 12-hex id" "busybox +latest +[0-9a-f]{12}" "$out"
assert_match "images lists gwtest" "gwtest +latest +[0-9a-f]{12}" "$out"
before=$(gw images -q | sort | tr '\n' ' ')

# each bad archive: exit 125 and the message that names what is wrong with it; nothing
# escapes the store (the traversal and symlink entries aim at /tmp/godwit-escaped, the hard
# link at /etc/shadow)
rm -f /tmp/godwit-escaped
declare -A why=(
	[truncated]="Truncated tar archive"
	[digest]="layer 1 \(sha256:[0-9a-f]{64}\): digest mismatch: content is sha256:[0-9a-f]{64}"
	[traversal]="entry '\.\./\.\./\.\./tmp/godwit-escaped': path traversal \('\.\.'\) refused"
	[symlink]="entry 'escape/godwit-escaped' walks through symlink 'escape' \(symlink escape refused\)"
	[hardlink]="hard link etc/shadow-copy: entry '\.\./\.\./\.\./etc/shadow': path traversal"
)
for bad in truncated digest traversal symlink hardlink; do
	out=$(gw load -i "$IMAGES/bad-$bad.tar" 2>&1); rc=$?
	assert_eq "bad-$bad: exit 125" 125 "$rc"
	assert_match "bad-$bad: the message names the fault" "^godwit load: .*${why[$bad]}" "$out"
done
assert_eq "no entry escaped the store" "" \
	"$(ls /tmp/godwit-escaped 2>/dev/null; find "$ROOT" /tmp -maxdepth 3 \( -name godwit-escaped -o -name shadow-copy \) 2>/dev/null)"
assert_eq "bad loads leave the image list unchanged" "$before" "$(gw images -q | sort | tr '\n' ' ')"
left=$(find "$ROOT/images/tmp" -mindepth 1 2>/dev/null | wc -l)
assert_eq "bad loads leave nothing half-written" 0 "$left"
out=$(gw load -i /nonexistent.tar 2>&1); rc=$?
assert_eq "missing archive: exit 125" 125 "$rc"
assert_match "missing archive: says so" "^godwit load: /nonexistent.tar: No such file or directory" "$out"

# bad input to run that needs no VM
out=$(gw run --rm nosuchimage:1 true 2>&1); rc=$?
assert_eq "unknown image: exit 125" 125 "$rc"
assert_match "unknown image: clear message" "unknown image" "$out"
out=$(gw run --cpus abc busybox true 2>&1); rc=$?
assert_eq "malformed --cpus: exit 125" 125 "$rc"
assert_match "malformed --cpus: says which flag" "cpus" "$out"
out=$(gw run -m 1 busybox true 2>&1); rc=$?
assert_eq "too little memory: exit 125" 125 "$rc"
assert_match "too little memory: says the least" "^godwit run: invalid --memory '1' \(at least 64M\)" "$out"
out=$(gw run --bogus busybox true 2>&1); rc=$?
assert_eq "unknown flag: exit 125" 125 "$rc"
assert_match "unknown flag: names it" "unrecognized option '--bogus'" "$out"
out=$(gw nosuchcommand 2>&1); rc=$?
assert_eq "unknown command: exit 125" 125 "$rc"
assert_match "unknown command: names it" "^godwit: unknown command 'nosuchcommand'" "$out"
assert_eq "no container was created by bad runs" "" "$(gw ps -aq)"

# the state root: made 0700 (with images/, containers/, volumes/), tightened when looser,
# refused when someone else owns it
assert_eq "the root and its stores are 0700" "700 700 700 700" \
	"$(stat -c %a "$ROOT" "$ROOT/images" "$ROOT/containers" "$ROOT/volumes" | tr '\n' ' ' | sed 's/ $//')"
chmod 755 "$ROOT" "$ROOT/images"
gw images >/dev/null
assert_eq "a looser root is tightened to 0700" "700 700" "$(stat -c %a "$ROOT" "$ROOT/images" | tr '\n' ' ' | sed 's/ $//')"
FOREIGN=$(new_root)
chown nobody "$FOREIGN"
out=$("$GODWIT" --root "$FOREIGN" images 2>&1); rc=$?
assert_eq "a root owned by another user: exit 125" 125 "$rc"
assert_match "a root owned by another user: says whose it is" \
	"^godwit: $FOREIGN is owned by uid [0-9]+, not by this user \(uid 0\)" "$out"
assert_eq "nothing was made in a root owned by another user" "" "$(ls -A "$FOREIGN")"

out=$(gw rmi gwtest:latest 2>&1); rc=$?
assert_eq "rmi exits 0" 0 "$rc"
assert_true "rmi removed it" bash -c "! '$GODWIT' --root '$ROOT' images | grep -q gwtest"
finish
