#!/usr/bin/env bash
# Networks (docs/network.md): create, ls, inspect, rm, and every bad request refused with exit
# 125, a clear message and nothing left behind. No VM; everything runs in a network namespace
# of this test's own, so the host's links and rules are never touched.
. tests/lib/e2e.sh
ROOT=$(new_root)
NS=gw-nt-$$
ip netns add "$NS" || { echo "# cannot make a network namespace"; FAIL=1; finish; exit 1; }
trap 'cleanup_roots; ip netns del "$NS" 2>/dev/null' EXIT
gwn() { ip netns exec "$NS" "$GODWIT" --root "$ROOT" "$@"; }
# the bridge of network $1: gw- and the first 8 hex digits of SHA-256 of its name
bridge_of() { echo "gw-$(printf '%s' "$1" | sha256sum | cut -c1-8)"; }
rules() { ip netns exec "$NS" nft list table inet godwit 2>/dev/null; }
links() { ip -n "$NS" -o link show | awk -F': ' '{ print $2 }' | sort | tr '\n' ' '; }
BR=$(bridge_of lan)

out=$(gwn network create lan --subnet 10.89.0.0/24 2>&1); rc=$?
assert_eq "create lan exits 0" 0 "$rc"
assert_eq "create prints the name" "lan" "$out"
assert_match "the bridge holds the gateway address" "inet 10\.89\.0\.1/24 .*scope global $BR" \
	"$(ip -n "$NS" -4 -o addr show dev "$BR" 2>&1)"
assert_match "the bridge is up" "<[^>]*,UP[,>]" "$(ip -n "$NS" -o link show dev "$BR" 2>&1)"
assert_match "masquerade rule for the subnet" \
	"chain nat-$BR \{.*ip saddr 10\.89\.0\.0/24 ip daddr != 10\.89\.0\.0/24 masquerade comment \"godwit network lan\"" \
	"$(rules | tr '\n\t' '  ')"
assert_match "forward rules for the bridge" \
	"chain fwd-$BR \{.*iifname \"$BR\" accept.*oifname \"$BR\" accept" "$(rules | tr '\n\t' '  ')"
assert_eq "IPv4 forwarding is on" 1 "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)"

out=$(gwn network create host --subnet 10.90.0.0/24 --gateway 10.90.0.254 --no-nat 2>&1); rc=$?
assert_eq "create --no-nat --gateway exits 0" 0 "$rc"
assert_match "the --gateway address is on its bridge" "inet 10\.90\.0\.254/24" \
	"$(ip -n "$NS" -4 -o addr show dev "$(bridge_of host)" 2>&1)"
assert_true "a --no-nat network has no rules" bash -c "! grep -q '$(bridge_of host)' <<<'$(rules)'"

out=$(gwn network ls 2>&1); rc=$?
assert_eq "ls exits 0" 0 "$rc"
assert_match "ls has its header" "^NAME +BRIDGE +SUBNET +GATEWAY +NAT +UPLINK +CONTAINERS" "$out"
assert_match "ls lists host" "host +$(bridge_of host) +10\.90\.0\.0/24 +10\.90\.0\.254 +no +- +0" "$out"
assert_match "ls lists lan" "lan +$BR +10\.89\.0\.0/24 +10\.89\.0\.1 +yes +- +0" "$out"
mac=$(ip netns exec "$NS" cat "/sys/class/net/$BR/address")
assert_match "a NAT network's bridge has a locally administered MAC" "^02:" "$mac"

out=$(gwn network inspect lan 2>&1); rc=$?
assert_eq "inspect exits 0" 0 "$rc"
assert_eq "inspect: JSON with every field" \
	"lan $BR 10.89.0.0/24 10.89.0.1 True {}" \
	"$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["bridge"], d["subnet"], d["gateway"], d["nat"], json.dumps(d["leases"]))' <<<"$out")"

# each bad request: exit 125, the message, and no record, link or rule more than before
links_before=$(links)
rules_before=$(rules)
records_before=$(ls "$ROOT/networks")
refused() { # WHAT REGEX ARGS...
	local what=$1 re=$2 out rc
	shift 2
	out=$(gwn network "$@" 2>&1); rc=$?
	assert_eq "$what: exit 125" 125 "$rc"
	assert_match "$what: says why" "$re" "$out"
}
refused "overlapping subnet" \
	'^godwit network create: subnet 10\.89\.0\.128/25 overlaps network "lan" \(10\.89\.0\.0/24\)$' \
	create other --subnet 10.89.0.128/25
refused "subnet around another" 'subnet 10\.0\.0\.0/8 overlaps network "host" \(10\.90\.0\.0/24\)' \
	create other --subnet 10.0.0.0/8
refused "bad CIDR" '^godwit network create: bad subnet "10\.91\.0\.0/33"' \
	create other --subnet 10.91.0.0/33
refused "host bits in the subnet" 'not a network address \(10\.91\.0\.0/24 is\)' \
	create other --subnet 10.91.0.7/24
refused "gateway outside the subnet" \
	"^godwit network create: gateway 10\.92\.0\.1 is outside network other's subnet 10\.91\.0\.0/24$" \
	create other --subnet 10.91.0.0/24 --gateway 10.92.0.1
refused "gateway is the broadcast address" "gateway 10\.91\.0\.255 is the broadcast address" \
	create other --subnet 10.91.0.0/24 --gateway 10.91.0.255
refused "prefix too long" "the prefix must be from /8 to /30" create other --subnet 10.91.0.0/31
refused "duplicate name" "^godwit network create: network lan already exists$" \
	create lan --subnet 10.93.0.0/24
refused "bad name" 'bad network name "Bad_Name"' create Bad_Name --subnet 10.94.0.0/24
refused "name too long" "too long" create "$(printf 'n%.0s' {1..40})" --subnet 10.94.0.0/24
refused "path in the name" 'bad network name "\.\./x"' create ../x --subnet 10.94.0.0/24
refused "no --subnet" "--subnet is required" create other
refused "an uplink that does not exist" "^godwit network create: uplink eth9: this host has no such interface$" \
	create other --subnet 10.94.0.0/24 --uplink eth9
refused "an uplink of godwit's own" "one of godwit's own bridges" \
	create other --subnet 10.94.0.0/24 --uplink "$BR"
refused "flag of another subcommand" "takes no such flag" ls --no-nat
refused "unknown subcommand" "unknown subcommand 'list'" list
refused "inspect of no network" "^godwit network inspect: no such network: nope$" inspect nope
refused "rm of no network" "^godwit network rm: no such network: nope$" rm nope
assert_eq "refusals leave no link" "$links_before" "$(links)"
assert_eq "refusals leave no rule" "$rules_before" "$(rules)"
assert_eq "refusals leave no record" "$records_before" "$(ls "$ROOT/networks")"

# --uplink: the bridge enslaves the host's interface and takes no address; no NAT
ip -n "$NS" link add gwup0 type veth peer name gwup0p
out=$(gwn network create seg --subnet 10.95.0.0/24 --gateway 10.95.0.254 --uplink gwup0 2>&1); rc=$?
assert_eq "create --uplink exits 0" 0 "$rc"
assert_match "the uplink is on the bridge" "master $(bridge_of seg)" \
	"$(ip -n "$NS" -o link show dev gwup0 2>&1)"
assert_eq "the bridge holds no address" "" "$(ip -n "$NS" -4 -o addr show dev "$(bridge_of seg)" 2>&1)"
assert_match "ls shows the uplink, no NAT" "seg +$(bridge_of seg) +10\.95\.0\.0/24 +10\.95\.0\.254 +no +gwup0 +0" \
	"$(gwn network ls 2>&1)"
assert_match "inspect shows the uplink" '"uplink": *"gwup0"' "$(gwn network inspect seg 2>&1)"
refused "an uplink that another network has" "uplink gwup0 is network \"seg\"'s already" \
	create other --subnet 10.96.0.0/24 --uplink gwup0
assert_eq "rm seg" "seg" "$(gwn network rm seg 2>&1)"
assert_eq "rm frees the uplink" "" "$(ip -n "$NS" -o link show dev gwup0 | grep -o 'master [^ ]*')"
ip -n "$NS" link del gwup0

# a corrupt record: refused by name, not acted on
cp "$ROOT/networks/host.json" "$ROOT/host.json.good"
echo '{"name":"host","subnet":' >"$ROOT/networks/host.json"
refused "corrupt record" "network record .*/networks/host\.json is corrupt: not JSON" inspect host
cp "$ROOT/host.json.good" "$ROOT/networks/host.json"

out=$(gwn network rm lan host 2>&1); rc=$?
assert_eq "rm exits 0" 0 "$rc"
assert_eq "rm prints the names" "lan host" "$(echo $out)"
assert_eq "rm removes the bridges" "lo " "$(links)"
assert_true "rm removes the rules" bash -c "! grep -q 'gw-' <<<'$(rules)'"
assert_eq "rm removes the records" "lock" "$(ls "$ROOT/networks")"
assert_eq "ls is empty" "1" "$(gwn network ls | wc -l)"
finish
