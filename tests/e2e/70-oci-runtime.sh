#!/usr/bin/env bash
# godwit-runtime, driven the way conmon drives runc (docs/oci-runtime.md): create from a
# bundle under a subreaper that waits for the pid file's process (tests/lib/oci_reap.py),
# start, state, kill, delete; the process runs in a QEMU guest, its output reaches the
# create's stdout/stderr and its exit status is the pid file's process's. Then runc's errors:
# unknown id, double create, kill of a stopped container, delete of a running one, start
# twice, and bundles it must refuse, each with exit 1, a clear message and nothing left.
. tests/lib/e2e.sh
RT=$(dirname "$GODWIT")/godwit-runtime
R=$(new_root)
W=$(mktemp -d /tmp/godwit-e2e-oci.XXXXXX)
trap 'rm -rf "$W"; cleanup_roots' EXIT
rt() { "$RT" --root "$R" "$@"; }

# a bundle: busybox as the root filesystem, config.json as `runc spec` would write it
mkdir -p "$W/b/rootfs/"{bin,dev,proc,sys,tmp,etc,root,run}
cp /bin/busybox "$W/b/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" == busybox ] || ln -s busybox "$W/b/rootfs/bin/$a"; done
printf '10.1.2.3 bundle-host\n' >"$W/hosts"
# bundle_config ARGS_JSON [EXTRA_TOP_LEVEL_JSON]: config.json with process.args ARGS_JSON
bundle_config() {
	cat >"$W/b/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $1,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from the bundle"],
    "cwd": "/tmp",
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2000, "soft": 1000}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "ocihost",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "$W/hosts", "options": ["rbind", "rprivate"]},
    {"destination": "/dev/shm", "type": "bind", "source": "$W", "options": ["bind"]}
  ],
  "linux": {"resources": {"memory": {"limit": 201326592}, "cpu": {"quota": 150000, "period": 100000}},
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]},
  "annotations": {"org.example.note": "kept"}${2:+,
  $2}
}
JSON
}
# reap ID: create ID under the stand-in conmon, in the background; its report in $W/ID.reap
reap() {
	python3 tests/lib/oci_reap.py "$W/$1.out" "$W/$1.err" "$W/$1.pid" -- \
		"$RT" --root "$R" --log "$W/log.json" --log-format json create --bundle "$W/b" \
		--pid-file "$W/$1.pid" "$1" >"$W/$1.reap" &
}
# wait_line ID WORD: until the reaper reported WORD (at most 60 s)
wait_line() {
	local i
	for i in $(seq 600); do
		grep -q "^$2" "$W/$1.reap" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
status_of() { rt state "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
json_field() { rt state "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)$2)"; }

out=$(rt features); rc=$?
assert_eq "features exits 0" 0 "$rc"
assert_true "features is JSON with ociVersionMax" python3 -c \
	'import json,sys; assert json.loads(sys.argv[1])["ociVersionMax"].startswith("1.")' "$out"

# ---- the life of a container, as conmon sees it --------------------------------------------
bundle_config '["sh", "-c", "echo hello from $(hostname) in $(pwd): $GREETING; grep -m1 \"model name\" /proc/cpuinfo; nproc; grep MemTotal /proc/meminfo; cat /etc/hosts; echo nofile $(ulimit -n) $(ulimit -Hn); echo oops >&2; exit 3"]'
reap c1
assert_true "create returns and writes the pid file" wait_line c1 created
pid=$(cat "$W/c1.pid" 2>/dev/null)
assert_eq "state: created" created "$(status_of c1)"
assert_eq "state: the pid is the pid file's" "$pid" "$(json_field c1 '["pid"]')"
assert_eq "state: the bundle" "$W/b" "$(json_field c1 '["bundle"]')"
assert_eq "state: the annotations" kept "$(json_field c1 '["annotations"]["org.example.note"]')"
assert_eq "the pid file names the container's shim" godwit-shim "$(cat /proc/"$pid"/comm 2>/dev/null)"
sleep 4 # longer than a guest's boot here (under 2 s): a START sent at the agent's HELLO would show
assert_eq "nothing ran before start" "" "$(cat "$W/c1.out")"
assert_eq "godwit's own ps shows it created" created \
	"$("$GODWIT" --root "$R" ps -a | awk '$1 == "c1" { print $3 }')"
rt start c1; rc=$?
assert_eq "start exits 0" 0 "$rc"
assert_true "the process ends and the pid file's process with it" wait_line c1 exit
assert_eq "its exit status is the container's" "exit 3" "$(tail -n 1 "$W/c1.reap")"
out=$(cat "$W/c1.out")
assert_match "its stdout reaches create's stdout: hostname, cwd, env" \
	"hello from ocihost in /tmp: from the bundle" "$out"
assert_match "it ran in a QEMU guest" "model name.*QEMU" "$out"
assert_eq "linux.resources.cpu: quota 1.5 CPUs gives 2 vCPUs" 2 "$(sed -n 3p "$W/c1.out")"
mem=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' "$W/c1.out")
assert_true "linux.resources.memory.limit sizes the guest (MemTotal $mem kB of 192 MiB)" \
	test "${mem:-0}" -gt 120000 -a "${mem:-0}" -le 196608
assert_match "process.rlimits apply in the guest (RLIMIT_NOFILE 1000/2000)" "nofile 1000 2000" \
	"$(cat "$W/c1.out")"
assert_match "a bound file is copied into its disk" "10.1.2.3 bundle-host" "$(cat "$W/c1.out")"
assert_eq "its stderr reaches create's stderr" oops "$(cat "$W/c1.err")"
assert_eq "state: stopped, pid 0" "stopped 0" "$(status_of c1) $(json_field c1 '["pid"]')"
out=$(rt kill c1 KILL 2>&1); rc=$?
assert_eq "kill of a stopped container: exit 1" 1 "$rc"
assert_match "... container not running" "container not running" "$out"
out=$(rt start c1 2>&1); rc=$?
assert_eq "start of a stopped container: exit 1" "1" "$rc"
assert_match "... says it has stopped" "cannot start a container that has stopped" "$out"
rt delete c1; rc=$?
assert_eq "delete of a stopped container exits 0" 0 "$rc"
out=$(rt state c1 2>&1); rc=$?
assert_eq "state of a deleted container: exit 1" 1 "$rc"
assert_match "... container does not exist" "container does not exist" "$out"
assert_eq "nothing of it is left" "" "$(ls "$R/containers")"

# ---- kill: a running process gets the signal; a created container ends ---------------------
bundle_config '["sh", "-c", "trap \"echo got TERM; exit 42\" TERM; echo up; i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.1; done"]'
reap c2
wait_line c2 created
rt start c2
for _ in $(seq 300); do grep -q up "$W/c2.out" && break; sleep 0.1; done
out=$(rt delete c2 2>&1); rc=$?
assert_eq "delete of a running container without --force: exit 1" 1 "$rc"
assert_match "... says it is running" "cannot delete container c2 that is not stopped: running" "$out"
assert_eq "... and it runs on" running "$(status_of c2)"
out=$(rt start c2 2>&1); rc=$?
assert_eq "start of a running container: exit 1" 1 "$rc"
assert_match "... already running" "cannot start an already running container" "$out"
# exec: in the foreground, and detached as conmon runs it (--process, --pid-file)
out=$(rt exec c2 sh -c 'echo in-exec: $GREETING in $(pwd); echo exec-err >&2; exit 5' 2>&1); rc=$?
assert_eq "exec in the foreground: its exit status" 5 "$rc"
assert_match "... its output, with the container's env and cwd" "in-exec: from the bundle in /tmp" "$out"
assert_match "... and its stderr" "exec-err" "$out"
cat >"$W/proc.json" <<'JSON'
{"args": ["sh", "-c", "echo detached as $(id -u):$(id -g) in $(pwd) with $EXTRA; exit 7"],
 "env": ["EXTRA=from-process-json"], "cwd": "/root", "user": {"uid": 1000, "gid": 1000}}
JSON
python3 tests/lib/oci_reap.py "$W/x.out" "$W/x.err" "$W/x.pid" -- "$RT" --root "$R" exec --detach \
	--pid-file "$W/x.pid" --process "$W/proc.json" c2 >"$W/x.reap"
assert_match "exec --detach returns once started, the pid file names its process" "^created [0-9]+" \
	"$(head -n 1 "$W/x.reap")"
assert_eq "... whose exit status is the process's" "exit 7" "$(tail -n 1 "$W/x.reap")"
assert_eq "... and process.json's args, env, cwd and user apply" \
	"detached as 1000:1000 in /root with from-process-json" "$(cat "$W/x.out")"
out=$(rt exec c2 2>&1); rc=$?
assert_eq "exec without a process: exit 1" 1 "$rc"
out=$(rt ps --format json c2); rc=$?
assert_eq "ps --format json: the shim and its QEMU" "0 [$(cat "$W/c2.pid"),$(pgrep -f -- "qemu-system.*$R/containers/c2/" | head -n 1)]" "$rc $out"
# pause and resume: the VM stops (no output) and goes on
rt pause c2; rc=$?
assert_eq "pause exits 0" 0 "$rc"
assert_eq "state: paused" paused "$(status_of c2)"
n1=$(grep -c tick "$W/c2.out"); sleep 1; n2=$(grep -c tick "$W/c2.out")
assert_eq "nothing runs while it is paused" "$n1" "$n2"
out=$(rt pause c2 2>&1); rc=$?
assert_eq "pause of a paused container: exit 1 (container not running)" "1 godwit-runtime: container not running" "$rc $out"
rt resume c2; rc=$?
assert_eq "resume exits 0" 0 "$rc"
assert_eq "state: running" running "$(status_of c2)"
for _ in $(seq 50); do [ "$(grep -c tick "$W/c2.out")" -gt "$n2" ] && break; sleep 0.1; done
assert_true "it goes on after resume" test "$(grep -c tick "$W/c2.out")" -gt "$n2"
out=$(rt resume c2 2>&1); rc=$?
assert_eq "resume of a running container: exit 1 (container not paused)" "1 godwit-runtime: container not paused" "$rc $out"

# update: the VM's memory and vCPUs stay; limits for host processes are accepted
echo '{"memory": {"limit": 201326592}, "cpu": {"quota": 150000, "period": 100000, "shares": 512}, "pids": {"limit": 100}}' >"$W/res.json"
rt update --resources "$W/res.json" c2; rc=$?
assert_eq "update with the VM's own memory and CPUs (and host-only limits): exit 0" 0 "$rc"
rt update --pids-limit 50 --cpu-share 100 c2; rc=$?
assert_eq "update --pids-limit --cpu-share: accepted, exit 0" 0 "$rc"
out=$(echo '{"memory": {"limit": 536870912}}' | rt update -r - c2 2>&1); rc=$?
assert_eq "update to another memory limit: exit 1" 1 "$rc"
assert_match "... the VM cannot change it while it runs" "memory limit 536870912: the container's VM has 201326592 bytes" "$out"
out=$(rt update --cpu-quota 400000 --cpu-period 100000 c2 2>&1); rc=$?
assert_match "update to 4 CPUs: exit 1, the VM has 2" "^1 .*4 CPUs: the container's VM has 2 vCPUs" "$rc $out"
out=$(echo '{"memory": ' | rt update -r - c2 2>&1); rc=$?
assert_match "update with a broken resources object: exit 1, says why" "^1 .*not one JSON object" "$rc $out"
rt kill c2 TERM; rc=$?
assert_eq "kill TERM exits 0" 0 "$rc"
assert_true "the process handles TERM and exits" wait_line c2 exit
assert_eq "with its own status" "exit 42" "$(tail -n 1 "$W/c2.reap")"
assert_match "its trap ran" "got TERM" "$(cat "$W/c2.out")"
out=$(rt exec c2 true 2>&1); rc=$?
assert_eq "exec in a stopped container: exit 1" 1 "$rc"
assert_match "... cannot exec in a stopped container" "cannot exec in a stopped container" "$out"
rt delete c2

# godwit's options as annotations (podman run --annotation)
sed -i 's|"org.example.note": "kept"|"org.godwit.memory": "320M", "org.godwit.cpus": "1", "org.godwit.machine": "pc-i440fx-9.0"|' "$W/b/config.json"
reap c3
wait_line c3 created
q=$(pgrep -f -- "qemu-system.*$R/containers/c3/" | head -n 1)
assert_match "annotations org.godwit.memory, cpus, machine size the VM" \
	"-machine pc-i440fx-9.0 .*-m 320M -smp 1 " "$(tr '\0' ' ' <"/proc/$q/cmdline" 2>&1)"
out=$(rt --log "$W/log.json" --log-format json create --bundle "$W/b" c3 2>&1); rc=$?
assert_eq "create of an id in use: exit 1" 1 "$rc"
assert_match "... container with id exists" "container with id exists: c3" "$out"
assert_eq "... the first is untouched" created "$(status_of c3)"
assert_match "runc's JSON log line for it" '"level":"error","msg":"container with id exists: c3"' \
	"$(cat "$W/log.json" 2>/dev/null)"
sleep 4 # its VM boots meanwhile: the process must still not run
rt kill c3 KILL; rc=$?
assert_eq "kill of a created container exits 0" 0 "$rc"
assert_true "a created container killed ends" wait_line c3 exit
assert_eq "with 128 + the signal" "exit 137" "$(tail -n 1 "$W/c3.reap")"
assert_eq "and never ran its process" "" "$(cat "$W/c3.out")"
rt delete c3

reap c4
wait_line c4 created
rt start c4
rt delete --force c4; rc=$?
assert_eq "delete --force of a running container exits 0" 0 "$rc"
assert_true "its shim is gone" wait_line c4 exit
out=$(rt state c4 2>&1)
assert_match "and so is its record" "container does not exist" "$out"

# ---- what it refuses: exit 1, the reason, nothing made ------------------------------------
refuse() { # refuse WHAT REGEX CREATE-ARGS...
	local what=$1 re=$2 out rc
	shift 2
	out=$(rt create --bundle "$W/b" "$@" bad 2>&1); rc=$?
	assert_eq "$what: exit 1" 1 "$rc"
	assert_match "$what: says why" "$re" "$out"
	assert_eq "$what: nothing made" "" "$(ls "$R/containers" 2>/dev/null)"
}
bundle_config '["true"]' '"hooks": {"prestart": [{"path": "/bin/true"}]}'
refuse "hooks" "hooks: not supported"
bundle_config '["true"]'
sed -i 's|"mounts": \[|"mounts": [{"destination": "/data", "type": "bind", "source": "'"$W"'", "options": ["rbind"]},|' "$W/b/config.json"
refuse "a bound directory" "mounts: $W at /data: a host directory cannot be shared"
bundle_config '["true"]'
sed -i 's|"mounts": \[|"mounts": [{"destination": "/x", "type": "nfs", "source": "h:/x"},|' "$W/b/config.json"
refuse "an nfs mount" "mounts\[0\] \(/x, type \"nfs\"\): not a file system the guest makes"
bundle_config '["true"]'
sed -i 's|"terminal": false|"terminal": true|' "$W/b/config.json"
refuse "process.terminal without --console-socket" "process.terminal needs --console-socket"
refuse "a --console-socket nobody listens on" "console-socket $W/nosock: No such file" \
	--console-socket "$W/nosock"
bundle_config '["true"]'
refuse "--console-socket without process.terminal" "console-socket given, but process.terminal is false" \
	--console-socket "$W/nosock"
bundle_config '[]'
refuse "empty process.args" "process.args: missing or empty"
bundle_config '["true"]'
sed -i 's|"org.example.note": "kept"|"org.godwit.memroy": "1G"|' "$W/b/config.json"
refuse "a mistyped godwit annotation" "annotation org.godwit.memroy: not a godwit option"
bundle_config '["true"]'
sed -i 's|"org.example.note": "kept"|"org.godwit.cpus": "65"|' "$W/b/config.json"
refuse "org.godwit.cpus 65" "annotation org.godwit.cpus: \"65\" is not 1 to 64"
bundle_config '["true"]'
sed -i 's|"limit": 201326592|"limit": 1048576|' "$W/b/config.json"
refuse "a 1 MiB memory limit" "memory.limit: 1048576 bytes, a VM needs at least"
echo '{"ociVersion": "1.0.2", "process": ' >"$W/b/config.json"
refuse "a truncated config.json" "config.json: not one JSON object"
bundle_config '["true"]'
refuse "--preserve-fds 3" "a VM cannot take the host's file descriptors" --preserve-fds 3
out=$(rt create --bundle "$W/b" '../x' 2>&1); rc=$?
assert_eq "an id with a slash: exit 1" 1 "$rc"
assert_match "... invalid container id" "invalid container id" "$out"
out=$(rt checkpoint c1 2>&1); rc=$?
assert_eq "a runc verb not there yet: exit 1" 1 "$rc"
assert_match "... says so" '"checkpoint" is not supported by godwit-runtime yet' "$out"

assert_eq "no QEMU or shim left running" "" "$(leftovers "$R")"
finish
