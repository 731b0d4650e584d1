#!/usr/bin/env bash
# Containers on a network (docs/network.md): `run --network` gives the guest its NIC, the
# address leased (or asked for), a route by the gateway and /etc/hosts; the host reaches a
# server in the container, at its address and through a published port (127.0.0.1 too), the
# container reaches the gateway and another container; rm and a killed shim leave no tap,
# lease or rule behind; bad input (a busy port among it) is refused before anything is made. Everything runs in a network namespace of this test's own (the host's network is
# never touched).
. tests/lib/e2e.sh
ROOT=$(new_root)
NS=gw-nr-$$
ip netns add "$NS" && ip -n "$NS" link set lo up
trap 'cleanup_roots; ip netns del "$NS" 2>/dev/null' EXIT
gwn() { ip netns exec "$NS" "$GODWIT" --root "$ROOT" "$@"; }
inns() { ip netns exec "$NS" "$@"; }
taps() { inns ip -o link show | grep -c ': gwt' || true; }
# get HOST PORT: /index.html's body over HTTP from the test's namespace (busybox nc: the
# static busybox's wget crashes on this host)
get() {
	printf 'GET /index.html HTTP/1.0\r\n\r\n' | inns busybox nc -w 5 "$1" "$2" 2>/dev/null |
		tail -n 1
}
gwn load -i "$IMAGES/busybox-docker.tar" >/dev/null

assert_eq "network create lan" 0 "$(gwn network create lan --subnet 10.89.0.0/24 >/dev/null 2>&1; echo $?)"

# a web server in the container, at the address asked for
# get_until HOST PORT WANT: get until it answers WANT (50 s at most); the last answer
get_until() {
	local got i
	for ((i = 0; i < 100; i++)); do
		got=$(get "$1" "$2")
		[ "$got" = "$3" ] && break
		sleep 0.5
	done
	echo "$got"
}
gwn run -d --name web --network lan --ip 10.89.0.11 -p 8080:80 busybox \
	sh -c 'echo hello-from-web >/tmp/index.html; exec httpd -f -p 80 -h /tmp' >/dev/null
assert_eq "the host reaches the container's server at its address" "hello-from-web" \
	"$(get_until 10.89.0.11 80 hello-from-web)"
assert_match "the guest's NIC has the address" "inet 10.89.0.11/24" "$(gwn exec web ip -4 addr 2>&1)"
assert_match "its default route is the gateway" "default via 10.89.0.1" "$(gwn exec web ip route 2>&1)"
assert_match "its /etc/hosts names it" "10.89.0.11[[:space:]]+web" "$(gwn exec web cat /etc/hosts 2>&1)"
assert_match "it reaches the gateway" "1 packets received" \
	"$(gwn exec web ping -c 1 -W 5 10.89.0.1 2>&1)"
assert_match "inspect lists its lease" '"web": *"10.89.0.11"' "$(gwn network inspect lan 2>&1)"
assert_eq "-p 8080:80: the host's 127.0.0.1:8080 reaches it" "hello-from-web" \
	"$(get 127.0.0.1 8080)"
assert_eq "-p 8080:80: so does the host's address on the bridge" "hello-from-web" \
	"$(get 10.89.0.1 8080)"
dnats() { inns nft list table inet godwit 2>/dev/null | grep -c "dnat ip to $1" || true; }
assert_eq "its DNAT rules (incoming, and this host's own)" 2 "$(dnats 10.89.0.11:80)"

# a second container: the next free address, and it reaches the first
gwn run -d --name c2 --network lan -p 8081:80 busybox sleep 1000 >/dev/null
ip2=$(gwn network inspect lan | sed -n 's/.*"c2": *"\([0-9.]*\)".*/\1/p')
assert_match "the second container got an address leased" "^10\.89\.0\.[0-9]+$" "$ip2"
assert_match "its NIC has it" "inet $ip2/24" "$(gwn exec c2 ip -4 addr 2>&1)"
assert_eq "container to container" "hello-from-web" \
	"$(gwn exec c2 sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 5 10.89.0.11 80" 2>&1 | tail -n 1)"
assert_eq "two containers, two taps on the bridge" 2 "$(taps)"

# bad input: refused with the reason, nothing made
before=$(gwn ps -aq | sort | tr '\n' ' ')
# refused WHAT REGEX ARGS...: `run ARGS busybox true` exits 125 and says REGEX
refused() {
	local what=$1 re=$2 out rc
	shift 2
	out=$(gwn run -d --name bad "$@" busybox true 2>&1); rc=$?
	assert_eq "run $what: exit 125" 125 "$rc"
	assert_match "run $what: says why ($out)" "$re" "$out"
}
refused "--ip outside the subnet" "outside" --network lan --ip 10.99.0.5
refused "--ip in use" "10.89.0.11" --network lan --ip 10.89.0.11
refused "--mac multicast" "--mac" --network lan --mac 01:00:5e:00:00:01
refused "-p of a port another container holds" "port 8080/tcp is in use" --network lan -p 8080:80
# (started as `ip netns exec`, which execs nc: $! is the listener itself, killed below;
# a listener left running would hold what the test inherited)
ip netns exec "$NS" busybox nc -l -p 8090 >/dev/null 2>&1 &
ncpid=$!
sleep 0.5
refused "-p of a port a host process listens on" "port 8090/tcp is in use" --network lan -p 8090:80
kill $ncpid 2>/dev/null
refused "-p with --network none" "--network none has none" --network none -p 8091:80
refused "-p malformed" "publish" --network lan -p 80
refused "--network nosuch" "nosuch" --network nosuch
refused "--ip without --network" "need --network" --ip 10.89.0.50
inns ip link add gwup0 type veth peer name gwup0p
gwn network create seg --subnet 10.95.0.0/24 --gateway 10.95.0.254 --uplink gwup0 >/dev/null
refused "-p on an uplink network" "network seg is on uplink gwup0, where the host has no address" \
	--network seg -p 8092:80
gwn network rm seg >/dev/null
inns ip link del gwup0
assert_eq "nothing left by the refused runs" "$before" "$(gwn ps -aq | sort | tr '\n' ' ')"
assert_eq "no lease left by them" "" "$(gwn network inspect lan | grep '"bad"')"
assert_eq "no tap left by them" 2 "$(taps)"

# -p without --network: the default network, made on first use
gwn run -d --name dflt -p 8093:80 busybox \
	sh -c 'echo hello-from-default >/tmp/index.html; exec httpd -f -p 80 -h /tmp' >/dev/null
assert_match "-p alone makes the default network" "^godwit +gw-[0-9a-f]{8} +10\.88\.0\.0/16 +10\.88\.0\.1 +yes +- +1" \
	"$(gwn network ls 2>&1 | grep '^godwit ')"
assert_eq "-p alone: the host's 127.0.0.1:8093 reaches it" "hello-from-default" \
	"$(get_until 127.0.0.1 8093 hello-from-default)"
gwn rm -f dflt >/dev/null
gwn network rm godwit >/dev/null
assert_eq "rm: its lease went, so the default network could go" "" "$(gwn network ls | grep '^godwit ')"

# rm gives back the lease and the tap; so does rm -f after the shim was killed
gwn rm -f web >/dev/null
assert_eq "rm: the lease is gone" "" "$(gwn network inspect lan | grep '"web"')"
assert_eq "rm: its tap is gone" 1 "$(taps)"
assert_eq "rm: its port rules are gone" 0 "$(dnats 10.89.0.11:80)"
pkill -9 -f -- "--root $ROOT .*__shim .* c2\$"
sleep 1
gwn rm -f c2 >/dev/null 2>&1
assert_eq "rm -f after a killed shim: no tap left" 0 "$(taps)"
assert_eq "rm -f after a killed shim: no port rule left" 0 "$(dnats "$ip2:80")"
assert_eq "rm -f after a killed shim: no lease left" "" "$(gwn network inspect lan | grep '"c2"')"
assert_eq "network rm lan" 0 "$(gwn network rm lan >/dev/null 2>&1; echo $?)"
assert_eq "no bridge left" "" "$(inns ip -o link show type bridge)"
sleep 1
assert_eq "no QEMU or shim left" "" "$(leftovers "$ROOT")"
finish
