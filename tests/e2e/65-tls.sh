#!/usr/bin/env bash
# Moves inside mutual TLS (docs/security.md) between two hosts (network namespaces,
# tests/lib/netns.sh). An `incoming` without TLS refuses a non-loopback address unless
# --insecure. A destination inside TLS turns away a plain source and one whose certificate
# comes from another CA, before anything crosses: the source runs on, the destination waits
# on. Then the move inside TLS, captured on the link with tcpdump: a marker the guest keeps in
# memory and on its disk crosses, intact, yet the capture never holds it in the clear; the move
# back without TLS (--insecure), captured the same way, does show it: the check can fail;
# then a post-copy move inside TLS whose link breaks and which --recover resumes.
. tests/lib/e2e.sh
. tests/lib/netns.sh
. tests/lib/moves.sh
. tests/lib/tlscerts.sh
two_hosts

T=$(new_root)
tls_certs "$T/good" "godwit test CA" "IP:$H1_IP,IP:$H2_IP" &&
	tls_certs "$T/evil" "another CA" "IP:$H1_IP,IP:$H2_IP"
assert_eq "two CAs and their pairs (openssl)" "ok" "$([ -s "$T/evil/client-key.pem" ] && echo ok)"
SEED=sec$$q
MARK="GW${SEED}MARK$(rev <<<"$SEED")"
P="secret ok "

# 1. the listener's rules
out=$(h2 incoming --name x --listen "tcp:$H2_IP:7999" 2>&1); rc=$?
assert_eq "plain incoming on a non-loopback address: refused (exit 125)" 125 "$rc"
assert_match "... it says why" "refusing to listen on a non-loopback address without TLS" "$out"
out=$(h2 incoming --name x --listen "tcp:$H2_IP:7999" --tls-dir "$T/nowhere" 2>&1); rc=$?
assert_eq "incoming with a missing TLS directory: refused (exit 125)" 125 "$rc"
assert_match "... it names it" "TLS directory $T/nowhere" "$out"
out=$(h2 incoming --name x --listen "tcp:$H2_IP:7999" --tls-dir "$T/good" --insecure 2>&1)
assert_eq "--tls-dir with --insecure: refused (exit 125)" 125 "$?"
assert_eq "nothing was made for them" "" "$(h2 ps -aq)"
assert_eq "plain incoming on loopback: allowed" "lo" \
	"$(h2 incoming --name lo --listen tcp:127.0.0.1:7998 2>&1)"
h2 rm -f lo >/dev/null

h1 run -d --name sec -m 512M gwtest secret "$SEED" 32 >/dev/null
wait_num 1 sec "$P" 2 300
assert_eq "the marker is in neither argv nor the log" "" "$(h1 logs sec | grep -F "$MARK")"

# 2. a destination inside TLS turns away what fails the handshake, and waits on; one that
# allows less memory than the container has refuses it (limits) before anything is made
PORT=7100
assert_eq "incoming inside TLS, at most 256 MiB" "sec" \
	"$(h2 incoming --name sec --listen "tcp:$H2_IP:$PORT" --tls-dir "$T/good" --memory-max 256M \
		2>&1)"
out=$(h1 migrate --tls-dir "$T/good" sec "tcp:$H2_IP:$PORT" 2>&1); rc=$?
assert_eq "a container larger than --memory-max is refused (exit 125)" 125 "$rc"
assert_match "... with reason limits" "limits: the container wants 512 MiB of memory; this host allows 256 MiB" "$out"
assert_match "the source runs on" "^sec +gwtest +running " "$(h1 ps | grep '^sec ')"
for ((i = 0; i < 50; i++)); do [ -z "$(h2 ps -aq)" ] && break; sleep 0.2; done
assert_eq "the refusing destination left nothing" "" "$(h2 ps -aq)$(leftovers "$R2")"
PORT=$((PORT + 1))
assert_eq "incoming inside TLS" "sec" \
	"$(h2 incoming --name sec --listen "tcp:$H2_IP:$PORT" --tls-dir "$T/good" 2>&1)"
out=$(h1 migrate sec "tcp:$H2_IP:$PORT" 2>&1); rc=$?
echo "# plain source: $out"
assert_eq "a plain source is refused (exit 125)" 125 "$rc"
out=$(h1 migrate --tls-dir "$T/evil" sec "tcp:$H2_IP:$PORT" 2>&1); rc=$?
echo "# another CA: $out"
assert_eq "a source from another CA is refused (exit 125)" 125 "$rc"
assert_match "... because of the certificate" "certificate" "$out"
assert_match "the source runs on" "^sec +gwtest +running " "$(h1 ps | grep '^sec ')"
assert_match "the destination still waits" "^sec +[^ ]+ +incoming " "$(h2 ps -a | grep '^sec ')"
assert_eq "the destination turned both away" 2 \
	"$(grep -c "a connection turned away: TLS" "$R2/containers/sec/shim.log")"
assert_eq "...before its QEMU started" "" "$(qemu_pid_of 2 sec)"
b=$(last_num sec 1 "$P")

# capture PCAP HOST: tcpdump on HOST's end of the link, all TCP, until stop_capture
capture() {
	ip netns exec "$(hns "$2")" tcpdump -i "$([ "$2" = 1 ] && echo "$VETH1" || echo "$VETH2")" \
		-s 0 -U -w "$1" tcp >/dev/null 2>&1 &
	CAP=$!
	for ((i = 0; i < 50; i++)); do [ -s "$1" ] && break; sleep 0.1; done
}
stop_capture() { kill "$CAP"; wait "$CAP" 2>/dev/null; }

# 3. the move inside TLS: nothing of the marker in the clear
capture "$T/tls.pcap" 1
out=$(h1 migrate --tls-dir "$T/good" sec "tcp:$H2_IP:$PORT" 2>&1); rc=$?
stop_capture
echo "# inside TLS: $out"
assert_eq "the move inside TLS completes" 0 "$rc"
size=$(stat -c %s "$T/tls.pcap")
assert_true "the capture holds the move ($((size >> 20)) MiB)" test "$size" -gt $((32 << 20))
assert_false "the capture never holds the marker in the clear" grep -qaF "$MARK" "$T/tls.pcap"
wait_num 2 sec "$P" $((b + 3)) 300
assert_true "the guest checked its marker on the destination" \
	test "$(last_num sec 2 "$P")" -ge $((b + 3))
assert_eq "the marker survived, in memory and on disk" "" \
	"$(h2 logs sec | grep CORRUPT)$(h2 exec sec sh -c 'head -c 4096 /secret | grep -c "'"$MARK"'" >/dev/null || echo lost')"

# 4. the control: the same move without TLS shows the marker on the wire
PORT=$((PORT + 1))
assert_eq "plain incoming with --insecure" "sec" \
	"$(h1 incoming --name sec --listen "tcp:$H1_IP:$PORT" --insecure 2>&1)"
capture "$T/plain.pcap" 2
out=$(h2 migrate sec "tcp:$H1_IP:$PORT" 2>&1); rc=$?
stop_capture
echo "# plain: $out"
assert_eq "the plain move back completes" 0 "$rc"
assert_true "its capture holds the marker in the clear" grep -qaF "$MARK" "$T/plain.pcap"
b=$(last_num sec 2 "$P")
wait_num 1 sec "$P" $((b + 2)) 300
assert_eq "the guest's marker is intact after both moves" "" "$(h1 logs sec | grep CORRUPT)"

# 5. a post-copy move inside TLS: its messages stay on the first connection (no control
# connection), QEMU's stream and the pages it pulls on the second. Its link breaks in
# post-copy: both ends pause, and `migrate --recover` resumes it over a new connection,
# admitted by the move's token and inside QEMU's TLS again
h2 rm sec >/dev/null 2>&1
PORT=$((PORT + 1))
assert_eq "incoming inside TLS, again" "sec" \
	"$(h2 incoming --name sec --listen "tcp:$H2_IP:$PORT" --tls-dir "$T/good" 2>&1)"
# 256 MiB dirtied flat out, so that QEMU has pages left to pull after the switch
hgwt 30 1 exec sec sh -c '/bin/gwtest memtest 256 1 >/dev/null 2>&1 &'
b=$(last_num sec 1 "$P")
capture "$T/pc.pcap" 1
h1 migrate --tls-dir "$T/good" --postcopy --bandwidth 50M --json sec "tcp:$H2_IP:$PORT" \
	>"$T/pc.out" 2>&1 &
mig=$!
st() { for ((i = 0; i < $2; i++)); do h1 migrate --status sec 2>/dev/null | grep -q "$1" && return 0; sleep 0.2; done; return 1; }
assert_true "the move inside TLS reaches post-copy" st "postcopy" 400
sleep 1
ip -n "$NS2" link set "$VETH2" down
assert_true "inside TLS, the broken post-copy move pauses" st "postcopy-paused" 200
ip -n "$NS2" link set "$VETH2" up
out=$(h1 migrate --recover sec "tcp:$H2_IP:$PORT" 2>&1); rc=$?
echo "# recover inside TLS: $out"
assert_eq "migrate --recover inside TLS exits 0" 0 "$rc"
wait "$mig"; rc=$?
stop_capture
out=$(cat "$T/pc.out")
echo "# post-copy inside TLS: $out"
assert_eq "the post-copy move inside TLS completes" 0 "$rc"
assert_match "... and switched to post-copy" '"kind":"postcopy"' "$out"
size=$(stat -c %s "$T/pc.pcap")
assert_true "its capture holds the move ($((size >> 20)) MiB)" test "$size" -gt $((32 << 20))
assert_false "its capture never holds the marker in the clear" grep -qaF "$MARK" "$T/pc.pcap"
wait_num 2 sec "$P" $((b + 3)) 300
assert_eq "the marker is intact after the post-copy move" "" "$(h2 logs sec | grep CORRUPT)"
h2 rm -f sec >/dev/null
h1 rm sec >/dev/null 2>&1
sleep 1
assert_eq "no QEMU or shim left on either host" "" "$(leftovers "$R1")$(leftovers "$R2")"
finish
