#!/usr/bin/env bash
# Docker's everyday verbs on one container VM: inspect (Docker's fields, godwit's), kill -s,
# wait (the exit code), start (a stopped container boots again from its own disk: its files
# and its output log go on), restart, kill's default SIGKILL, and their errors; a foreground
# run and exec pass the signals they get to the container's process (docker's --sig-proxy).
. tests/lib/e2e.sh
ROOT=$(new_root)
gw load -i "$IMAGES/busybox-docker.tar" >/dev/null
# jq-like: json_get JSON EXPR (python's indexing on the parsed JSON)
json_get() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1" 2>&1; }
ticks_past() { # ticks_past N: until the log holds more than N "start" lines and a tick after
	for _ in $(seq 300); do
		[ "$(gw logs v1 2>/dev/null | grep -c '^start$')" -gt "$1" ] &&
			gw logs v1 2>/dev/null | sed -n '$p' | grep -q tick && return 0
		sleep 0.1
	done
	return 1
}

gw run -d --name v1 -m 256 busybox sh -c \
	'trap "echo got TERM; exit 42" TERM; echo start; i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.2; done' >/dev/null
assert_true "v1 runs" ticks_past 0
out=$(gw inspect v1); rc=$?
assert_eq "inspect exits 0" 0 "$rc"
assert_eq "inspect: Name, State.Status, Running" "/v1 running True" \
	"$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j[0]["Name"], j[0]["State"]["Status"], j[0]["State"]["Running"])' "$out")"
qpid=$(pgrep -f -- "qemu-system.*$ROOT/containers/v1/" | head -n 1)
assert_eq "inspect: State.Pid is the VM's QEMU" "$qpid" "$(json_get "$out" '[0]["State"]["Pid"]')"
assert_eq "inspect: Config.Cmd" "sh" "$(json_get "$out" '[0]["Config"]["Cmd"][0]')"
assert_eq "inspect: HostConfig.Memory" 268435456 "$(json_get "$out" '[0]["HostConfig"]["Memory"]')"
assert_match "inspect: Godwit.Accel" "^(tcg|kvm)$" "$(json_get "$out" '[0]["Godwit"]["Accel"]')"
started1=$(json_get "$out" '[0]["State"]["StartedAt"]')
gw exec v1 sh -c 'echo kept > /kept; sync'
out=$(gw top v1); rc=$?
assert_eq "top exits 0" 0 "$rc"
assert_match "top: its header" "^UID +PID +PPID +STAT +RSS +TIME +CMD" "$out"
assert_match "top: the main process, root, child of the agent, its command line" \
	$'\n0 +[0-9]+ +1 +[A-Z] +[0-9]+k .* sh -c trap' "$out"
assert_eq "top: not the agent itself (pid 1)" "" "$(echo "$out" | awk '$2 == 1')"
gw exec v1 sh -c 'dd if=/dev/zero of=/big bs=1M count=12 2>/dev/null; sync; rm /big'
out=$(gw stats --no-stream v1); rc=$?
echo "$out" | sed 's/^/# /'
assert_eq "stats --no-stream exits 0" 0 "$rc"
assert_match "stats: docker's columns and the host's" \
	"^NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS +HOST CPU % +QEMU RSS" "$out"
row=$(echo "$out" | awk '$1 == "v1"')
assert_match "stats: the guest's memory limit is about its 256M, usage below it" \
	"^v1 +[0-9.]+% +[0-9.]+MiB / 2[0-9][0-9]MiB +[0-9.]+% " "$row"
assert_match "stats: the 12 MB the guest wrote are in its block I/O" " / (1[2-9]|[2-9][0-9])\\.?[0-9]*MB " "$row"
assert_match "stats: its processes, the host's CPU and QEMU's memory" \
	" [1-9][0-9]* +[0-9.]+% +[0-9.]+MiB$" "$row"
# cp, both ways, with the container's tar
mkdir -p "$ROOT/out" "$ROOT/indir/sub"
gw exec v1 sh -c 'mkdir -p /d/sub; echo a > /d/f; echo b > /d/sub/g; ln -s f /d/link; chmod 4755 /d/f'
out=$(gw cp v1:/d/f "$ROOT/out"); rc=$?
assert_eq "cp out: a file into a host directory" "0 a" "$rc $(cat "$ROOT/out/f" 2>&1)"
assert_eq "cp out: no setuid bit reaches the host" "" "$(find "$ROOT/out/f" -perm -4000)"
gw cp v1:/d "$ROOT/out/d2"; rc=$?
assert_eq "cp out: a directory under a new name (files, subdirectory, symlink)" "0 a b f" \
	"$rc $(cat "$ROOT/out/d2/f" "$ROOT/out/d2/sub/g" 2>&1 | tr '\n' ' ')$(readlink "$ROOT/out/d2/link")"
assert_eq "cp out to -: a tar stream" "f" "$(gw cp v1:/d/f - | tar -tf -)"
echo hello-in >"$ROOT/in.txt"
echo x-in >"$ROOT/indir/sub/x"
head -c 2000000 /dev/urandom >"$ROOT/indir/blob"
gw cp "$ROOT/in.txt" v1:/tmp; rc=$?
assert_eq "cp in: a file into the container's directory" "0 hello-in" "$rc $(gw exec v1 cat /tmp/in.txt 2>&1)"
gw cp "$ROOT/indir" v1:/newdir; rc=$?
assert_eq "cp in: a directory under a new name, 2 MB arrive whole" \
	"0 x-in $(md5sum <"$ROOT/indir/blob" | cut -c1-32)" \
	"$rc $(gw exec v1 sh -c 'cat /newdir/sub/x; md5sum < /newdir/blob' 2>&1 | cut -c1-32 | tr '\n' ' ' | sed 's/ $//')"
out=$(gw cp v1:/nope "$ROOT/out/x" 2>&1); rc=$?
assert_eq "cp of a missing path: exit 125" 125 "$rc"
assert_match "... the container's tar says why" "tar -c in the container failed.*nope" "$out"
out=$(gw cp "$ROOT/in.txt" "$ROOT/x" 2>&1); rc=$?
assert_eq "cp between two host paths: a usage error, 125" 125 "$rc"
# a container's tar that lies: an entry that climbs out of the destination
python3 -c 'import io,tarfile,sys
t=tarfile.open(sys.argv[1],"w")
for n in ("d/ok","d/../../escaped"):
    i=tarfile.TarInfo(n); d=b"x\n"; i.size=len(d); t.addfile(i,io.BytesIO(d))
t.close()' "$ROOT/evil.tar"
gw cp "$ROOT/evil.tar" v1:/evil.tar
gw exec v1 sh -c 'mkdir -p /usr/local/bin; printf "#!/bin/sh\ncat /evil.tar\n" > /usr/local/bin/tar; chmod +x /usr/local/bin/tar'
mkdir -p "$ROOT/out/deep/er"
out=$(cd "$ROOT/out/deep/er" && "$GODWIT" --root "$ROOT" cp v1:/d "$ROOT/out/deep/er/d3" 2>&1); rc=$?
assert_eq "cp out of a lying tar: exit 125" 125 "$rc"
assert_match "... refused, saying why" "outside|\\.\\." "$out"
assert_eq "... nothing escaped the destination" "" "$(find "$ROOT/out" -name escaped)"
gw exec v1 rm /usr/local/bin/tar
out=$(gw top nosuch 2>&1); rc=$?
assert_eq "top of no such container: exit 125" 125 "$rc"

out=$(gw kill -s TERM v1); rc=$?
assert_eq "kill -s TERM prints the name, exits 0" "0 v1" "$rc $out"
out=$(gw wait v1); rc=$?
assert_eq "wait prints the exit code of the process (its TERM trap's)" "0 42" "$rc $out"
out=$(gw inspect v1)
assert_eq "inspect after: exited, ExitCode 42, not running, Pid 0" "exited 42 False 0" \
	"$(python3 -c 'import json,sys; s=json.loads(sys.argv[1])[0]["State"]; print(s["Status"], s["ExitCode"], s["Running"], s["Pid"])' "$out")"
out=$(gw kill v1 2>&1); rc=$?
assert_eq "kill of a stopped container: exit 125" 125 "$rc"
assert_match "... it is not running" "container v1 is not running" "$out"

out=$(gw start v1); rc=$?
assert_eq "start of a stopped container prints the name" "0 v1" "$rc $out"
assert_true "it boots again and its output log goes on (a second start line)" ticks_past 1
assert_eq "the log kept the first run's lines" 1 "$(gw logs v1 2>/dev/null | grep -c '^got TERM$')"
out=$(gw exec v1 cat /kept 2>&1)
assert_eq "a file written before the stop is on its disk" kept "$out"
started2=$(json_get "$(gw inspect v1)" '[0]["State"]["StartedAt"]')
assert_true "inspect: StartedAt moved ($started1 -> $started2)" test "$started2" \> "$started1"
out=$(gw start v1); rc=$?
assert_eq "start of a running container: nothing to do, exit 0" "0 v1" "$rc $out"

out=$(gw restart -t 5 v1); rc=$?
assert_eq "restart prints the name" "0 v1" "$rc $out"
assert_true "it runs a third time" ticks_past 2
assert_eq "its TERM trap ran at the restart's stop" 2 "$(gw logs v1 2>/dev/null | grep -c '^got TERM$')"
out=$(gw exec v1 cat /kept 2>&1)
assert_eq "the file is still there" kept "$out"

gw run -d --name w2 busybox sh -c 'sleep 1; exit 3' >/dev/null
gw kill v1 >/dev/null
out=$(gw wait v1 w2 | tr '\n' ' '); rc=$?
assert_eq "kill's default is SIGKILL (137); wait prints one code a line, in order" "0 137 3 " \
	"$rc $out"
out=$(gw start nosuch 2>&1); rc=$?
assert_eq "start of an unknown container: exit 125" 125 "$rc"
assert_match "... says so" "no such container: nosuch" "$out"
out=$(gw inspect nosuch v1 2>/dev/null); rc=$?
assert_eq "inspect of an unknown and a known one: exit 125" 125 "$rc"
assert_eq "... still prints the known one" "/v1" "$(json_get "$out" '[0]["Name"]')"
out=$(gw kill -s NOPE v1 2>&1); rc=$?
assert_eq "kill -s with an unknown signal: exit 125" 125 "$rc"
assert_match "... says which" "invalid signal 'NOPE'" "$out"
# a foreground run passes SIGINT and SIGTERM on to the container's process
"$GODWIT" --root "$ROOT" run --rm --name fg busybox sh -c \
	'trap "echo got INT" INT; trap "echo got TERM; exit 9" TERM; echo ready; while :; do sleep 0.1; done' \
	>"$ROOT/fg.out" 2>&1 &
fg=$!
for _ in $(seq 300); do grep -q ready "$ROOT/fg.out" && break; sleep 0.1; done
kill -INT "$fg"
for _ in $(seq 100); do grep -q "got INT" "$ROOT/fg.out" && break; sleep 0.1; done
assert_match "Ctrl-C (SIGINT) on a foreground run reaches the container's process" "got INT" \
	"$(cat "$ROOT/fg.out")"
kill -TERM "$fg"
wait "$fg"; rc=$?
assert_eq "... and SIGTERM too: the run exits with the process's status" 9 "$rc"
assert_match "... after its trap ran" "got TERM" "$(cat "$ROOT/fg.out")"
# --restart: on-failure:2 boots it twice more, then it stays stopped with its status
gw run -d --name r1 --restart on-failure:2 busybox sh -c 'echo boot; exit 3' >/dev/null
out=$(gw wait r1); rc=$?
assert_eq "on-failure:2: wait returns the last status" "0 3" "$rc $out"
assert_eq "... after three runs of the process" 3 "$(gw logs r1 2>/dev/null | grep -c '^boot$')"
out=$(gw inspect r1)
assert_eq "... inspect: RestartCount 2, RestartPolicy on-failure/2" "2 on-failure 2" \
	"$(python3 -c 'import json,sys; j=json.loads(sys.argv[1])[0]; p=j["HostConfig"]["RestartPolicy"]; print(j["RestartCount"], p["Name"], p["MaximumRetryCount"])' "$out")"
gw run -d --name r2 --restart always busybox sh -c 'echo boot; sleep 1; exit 0' >/dev/null
for _ in $(seq 600); do [ "$(gw logs r2 2>/dev/null | grep -c '^boot$')" -ge 2 ] && break; sleep 0.1; done
n=$(gw logs r2 2>/dev/null | grep -c '^boot$')
assert_true "always: a process that exits 0 runs again ($n runs)" test "$n" -ge 2
gw stop r2 >/dev/null; rc=$?
assert_eq "always: stop exits 0" 0 "$rc"
n=$(gw logs r2 2>/dev/null | grep -c '^boot$'); sleep 3
assert_eq "... and after stop it stays stopped" "stopped $n" \
	"$(gw ps -a | awk '$1 == "r2" { print $3 }') $(gw logs r2 2>/dev/null | grep -c '^boot$')"
out=$(gw run --rm --restart always busybox true 2>&1); rc=$?
assert_eq "--restart with --rm: exit 125" 125 "$rc"
assert_match "... they conflict" "--restart and --rm conflict" "$out"
out=$(gw run --restart on-failure:0 busybox true 2>&1); rc=$?
assert_eq "--restart on-failure:0: exit 125" 125 "$rc"
gw rm -f v1 w2 r1 r2 >/dev/null
assert_eq "no QEMU or shim left running" "" "$(leftovers "$ROOT")"
finish
