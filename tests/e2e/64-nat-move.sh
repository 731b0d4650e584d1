#!/usr/bin/env bash
# A container on a NAT network moves with its published ports (docs/network.md, "Moving a
# container on a network"): both hosts (network namespaces, tests/lib/netns.sh) have network
# "nat" with the same subnet; a web server in the container publishes 8080:80. A destination
# whose port 8080 is taken refuses the move (port-busy) before anything is made, the source
# serving on; then the move: the destination's 127.0.0.1:8080 and the container's address
# reach the server there, the source's port, rules, tap and lease are gone, and the guest
# still reaches its gateway (the bridge has the same MAC on both hosts).
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
two_hosts

IP=10.91.0.11
inh() { local h=$1; shift; ip netns exec "$(hns "$h")" "$@"; }
# get HOST-NUMBER ADDR PORT: /index.html's body over HTTP, from that host's namespace
get() {
	printf 'GET /index.html HTTP/1.0\r\n\r\n' | inh "$1" busybox nc -w 5 "$2" "$3" 2>/dev/null |
		tail -n 1
}
get_until() { # HOST ADDR PORT: until it answers hello-from-web (50 s at most)
	local got i
	for ((i = 0; i < 100; i++)); do
		got=$(get "$@")
		[ "$got" = hello-from-web ] && break
		sleep 0.5
	done
	echo "$got"
}
dnats() { inh "$1" nft list table inet godwit 2>/dev/null | grep -c "dnat ip to $IP:80" || true; }
taps() { inh "$1" ip -o link show | grep -c ': gwt' || true; }
for h in 1 2; do
	assert_eq "h$h: network nat" "nat" "$(hgw $h network create nat --subnet 10.91.0.0/24 2>&1)"
done
h1 run -d --name web --network nat --ip $IP -p 8080:80 busybox \
	sh -c 'echo hello-from-web >/tmp/index.html; exec httpd -f -p 80 -h /tmp' >/dev/null
assert_eq "h1's 127.0.0.1:8080 reaches the container" "hello-from-web" "$(get_until 1 127.0.0.1 8080)"

# 1. the destination's port 8080 is taken: refused before anything is made
ip netns exec "$(hns 2)" busybox nc -l -p 8080 >/dev/null 2>&1 &
HOLD=$!
sleep 0.5
out=$(migrate_to 1 2 web 2>&1); rc=$?
kill $HOLD 2>/dev/null
wait $HOLD 2>/dev/null
echo "# port taken: $out"
assert_eq "port taken on the destination: migrate fails (exit 125)" 125 "$rc"
assert_match "port taken on the destination: says why" "port-busy" "$out"
dest_empty "port taken on the destination"
assert_eq "port taken on the destination: no tap, rule or lease left there" "0 0 0" \
	"$(taps 2) $(dnats 2) $(hgw 2 network inspect nat | grep -c '"web"')"
assert_eq "port taken on the destination: the source serves on" "hello-from-web" \
	"$(get 1 127.0.0.1 8080)"

# 2. the move: the ports go with it
out=$(migrate_to 1 2 web 2>&1); rc=$?
echo "# move: $out"
assert_eq "move: migrate exits 0" 0 "$rc"
assert_match "move: the destination runs it" "^web +[^ ]+ +running " "$(h2 ps | grep '^web ')"
assert_eq "move: h2's 127.0.0.1:8080 reaches the container" "hello-from-web" \
	"$(get_until 2 127.0.0.1 8080)"
assert_eq "move: so does its address, from h2" "hello-from-web" "$(get 2 $IP 80)"
assert_eq "move: h2 has its DNAT rules" 2 "$(dnats 2)"
assert_eq "move: h1's port 8080 answers no more" "" "$(get 1 127.0.0.1 8080)"
assert_eq "move: h1 has no rule, tap or lease left" "0 0 0" \
	"$(dnats 1) $(taps 1) $(hgw 1 network inspect nat | grep -c '"web"')"
assert_match "move: h2 leased its address" "\"web\": *\"$IP\"" "$(hgw 2 network inspect nat)"
assert_match "move: the guest reaches its gateway on h2" "1 packets received" \
	"$(hgwt 60 2 exec web ping -c 1 -W 5 10.91.0.1 2>&1)"
h1 rm web >/dev/null
h2 rm -f web >/dev/null
assert_eq "rm: no rule or tap left on h2" "0 0" "$(dnats 2) $(taps 2)"
for h in 1 2; do
	assert_eq "h$h: network rm" "nat" "$(hgw $h network rm nat 2>&1)"
done
finish
