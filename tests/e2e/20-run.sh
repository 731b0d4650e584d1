#!/usr/bin/env bash
# Container VMs: real QEMU guests run real images. Output and exit codes, env/cwd/user, CPUs
# and memory seen inside, a fresh disk per container, crashes, detached containers with ps,
# logs -t, exec, stop and rm, two at once, and bad input that must leave nothing behind.
. tests/lib/e2e.sh
ROOT=$(new_root)
gw load -i "$IMAGES/busybox-docker.tar" >/dev/null
gw load -i "$IMAGES/gwtest-oci" >/dev/null

out=$(gw run --rm busybox echo hi 2>&1); rc=$?
assert_eq "run echo hi prints hi" "hi" "$out"
assert_eq "run echo hi exits 0" 0 "$rc"
gw run --rm busybox sh -c 'exit 7' >/dev/null 2>&1; rc=$?
assert_eq "the container's exit status is godwit's" 7 "$rc"

out=$(gw run --rm -e K=V -e GWTEST=2 gwtest 2>&1)
assert_match "image env applied" "PATH=/bin:/usr/bin" "$out"
assert_true "-e adds a variable" grep -qx "K=V" <<<"$out"
assert_match "-e overrides the image's" "GWTEST=2" "$out"
out=$(gw run --rm gwtest cwd 2>&1)
assert_eq "image WorkingDir applied" "/srv" "$out"
out=$(gw run --rm -w /tmp gwtest cwd 2>&1)
assert_eq "-w overrides the working dir" "/tmp" "$out"
out=$(gw run --rm -w /tmp -u app gwtest whoami 2>&1; gw run --rm -w /tmp -u app gwtest cwd 2>&1)
assert_eq "-u app -w /tmp together: the user and the dir" "1000:1000 /tmp" "$(echo $out)"
out=$(gw run --rm -u app gwtest whoami 2>&1)
assert_eq "-u NAME resolved from the image's /etc/passwd" "1000:1000" "$out"
out=$(gw run --rm -u 1234:55 gwtest whoami 2>&1)
assert_eq "-u UID:GID" "1234:55" "$out"
out=$(gw run --rm --cpus 2 -m 300M busybox sh -c 'nproc; grep MemTotal /proc/meminfo' 2>&1)
assert_eq "--cpus 2 seen as 2 CPUs" "2" "$(head -n1 <<<"$out")"
kb=$(awk '/MemTotal/ {print $2}' <<<"$out")
assert_true "-m 300M seen in /proc/meminfo ($kb kB)" test "${kb:-0}" -gt 230000 -a "${kb:-0}" -le 307200
gw run --rm gwtest crash >/dev/null 2>&1; rc=$?
assert_eq "a crashing program exits 128+SIGSEGV" 139 "$rc"
out=$(gw run --rm busybox /no/such/program 2>&1); rc=$?
assert_eq "a missing program exits 127" 127 "$rc"
assert_match "a missing program is explained" "no/such/program" "$out"

gw run --rm busybox sh -c 'echo written > /marker; sync' >/dev/null 2>&1
out=$(gw run --rm busybox sh -c 'test -e /marker && echo present || echo absent' 2>&1)
assert_eq "a file written in one run is absent from the next container" "absent" "$out"

# detached containers
out=$(gw run -d --name web -m 256 busybox sh -c 'echo start; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done'); rc=$?
assert_eq "run -d prints the name" "web" "$out"
assert_eq "run -d exits 0" 0 "$rc"
out=$(gw run -d --name other busybox sleep 1000)
assert_eq "a second container at once" "other" "$out"
out=$(gw run -d --name web busybox true 2>&1); rc=$?
assert_eq "a name already in use: exit 125" 125 "$rc"
assert_match "a name already in use: clear message" "already in use" "$out"
# until web has printed two ticks (its guest boots beside another's: no fixed time will do)
for _ in $(seq 300); do gw logs web 2>/dev/null | grep -q "tick 1" && break; sleep 0.1; done
out=$(gw ps)
accel=$(gw info | awk '/^accelerator:/ { print $2 }')
assert_match "info names the accelerator ($accel)" "^(kvm|tcg)$" "$accel"
assert_match "ps shows web running with memory and accelerator" "web +busybox +running +[0-9]+s +256M +$accel" "$out"
assert_match "ps shows the second container" "other +busybox +running" "$out"
# the machine type of this QEMU's version, kept in the container's config
want=$(gw info | awk '/^qemu:/ { split($2, v, "."); print "pc-i440fx-" v[1] "." v[2] }')
assert_match "a new container runs this QEMU's versioned machine type ($want)" \
	"-machine $want " "$(tr '\0' ' ' <"/proc/$(pgrep -f -- "qemu-system.*$ROOT/containers/web/")/cmdline" 2>&1)"
assert_match "the container's config keeps its machine type" "\"machine\": *\"$want\"" \
	"$(cat "$ROOT/containers/web/config.json")"
out=$(gw run --machine 'pc-i440fx-9.0,accel=kvm' busybox true 2>&1); rc=$?
assert_eq "run --machine with a malformed type: exit 125" 125 "$rc"
assert_match "run --machine with a malformed type: clear message" "invalid machine type" "$out"
out=$(gw logs -t web | head -n 2)
assert_match "logs -t prefixes RFC 3339 nanosecond times" "^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z start" "$out"
out=$(gw logs web | head -n 3 | tr '\n' ' ')
assert_eq "logs keep the order of the output" "start tick 0 tick 1 " "$out"
out=$(gw exec web sh -c 'echo in-$HOSTNAME; hostname' 2>&1)
assert_match "exec runs in the running container" "web" "$out"
gw exec web sh -c 'exit 5'; rc=$?
assert_eq "exec returns the command's status" 5 "$rc"
out=$(gw exec -e X=1 web sh -c 'echo $X' 2>&1)
assert_eq "exec -e" "1" "$out"
# logs -f prints what was there, then follows: lines the container prints later arrive while
# it runs (plain logs would end at once)
n0=$(gw logs web | sed -n 's/^tick //p' | tail -n 1)
follow=$(mktemp); echo "$follow" >>"$ROOTS_FILE"
timeout 30 "$GODWIT" --root "$ROOT" logs -f web >"$follow" 2>&1 &
fpid=$!
for ((i = 0; i < 100; i++)); do grep -qx "tick $((n0 + 5))" "$follow" && break; sleep 0.2; done
assert_eq "logs -f starts with the first line" "start" "$(head -n 1 "$follow")"
assert_true "logs -f follows: a line printed later (tick $((n0 + 5))) arrives" grep -qx "tick $((n0 + 5))" "$follow"
assert_true "logs -f is still following" kill -0 "$fpid"
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
# a VM that answers nothing (stopped from outside, as good as a crashed guest kernel): exec
# does not wait for good; it ends after 30 s with godwit's own status and says why
q=$(pgrep -f -- "qemu-system.*$ROOT/containers/web/")
kill -STOP $q
out=$(timeout 90 "$GODWIT" --root "$ROOT" exec web echo hi 2>&1); rc=$?
kill -CONT $q
assert_eq "exec into a VM that answers nothing: exit 125" 125 "$rc"
assert_match "exec into a VM that answers nothing: it says why" \
	"agent has not started the command in 30 s" "$out"
assert_eq "exec works again once the VM runs" "again" "$(timeout 60 "$GODWIT" --root "$ROOT" exec web echo again 2>&1)"
out=$(gw rm web 2>&1); rc=$?
assert_eq "rm of a running container without -f: exit 125" 125 "$rc"
gw stop web >/dev/null; rc=$?
assert_eq "stop exits 0" 0 "$rc"
out=$(gw ps -a)
assert_match "a stopped container is listed by ps -a" "web +busybox +stopped" "$out"
assert_true "a stopped container is not listed by ps" bash -c "! '$GODWIT' --root '$ROOT' ps | grep -q '^web '"
assert_match "a stopped container keeps its logs" "tick 1" "$(gw logs web)"
out=$(gw exec web true 2>&1); rc=$?
assert_eq "exec into a stopped container: exit 125" 125 "$rc"
gw rm web >/dev/null; rc=$?
assert_eq "rm exits 0" 0 "$rc"
out=$(gw logs web 2>&1); rc=$?
assert_eq "rm removed the record" 125 "$rc"
gw rm -f other >/dev/null; rc=$?
assert_eq "rm -f stops and removes" 0 "$rc"
assert_eq "nothing listed at the end" "" "$(gw ps -aq)"
sleep 1
assert_eq "no QEMU or shim left running" "" "$(leftovers "$ROOT")"

out=$("$GODWIT" --root "$ROOT" --kernel /nonexistent run --rm busybox true 2>&1); rc=$?
assert_eq "a missing kernel: exit 125" 125 "$rc"
assert_eq "a failed start leaves no container" "" "$(gw ps -aq)"
finish
