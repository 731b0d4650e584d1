# Two "hosts" for migration tests (sourced after tests/lib/e2e.sh): each host is a network
# namespace of our own plus its own --root. The namespaces are joined by a veth pair with
# 10.77.N.1 (h1) and 10.77.N.2 (h2); N and the names are unique per test run. Everything a
# host runs (shims, QEMU) is started inside its namespace and stays there (the shim
# daemonizes, but a namespace is inherited). Torn down at exit, after the containers.
NS_ID=$(( $$ % 250 + 1 ))
NS1=gw-h1-$$
NS2=gw-h2-$$
VETH1=gwv1-$$
VETH2=gwv2-$$
H1_IP=10.77.$NS_ID.1
H2_IP=10.77.$NS_ID.2

netns_setup() {
	ip netns add "$NS1" && ip netns add "$NS2" || return 1
	ip link add "$VETH1" type veth peer name "$VETH2" || return 1
	ip link set "$VETH1" netns "$NS1" && ip link set "$VETH2" netns "$NS2" || return 1
	ip -n "$NS1" addr add "$H1_IP/24" dev "$VETH1" && ip -n "$NS2" addr add "$H2_IP/24" dev "$VETH2"
	ip -n "$NS1" link set lo up && ip -n "$NS2" link set lo up
	ip -n "$NS1" link set "$VETH1" up && ip -n "$NS2" link set "$VETH2" up
}

netns_teardown() {
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	return 0
}

# Containers first (their shims live in the namespaces), then the namespaces.
netns_cleanup_all() {
	cleanup_roots
	netns_teardown
}
trap netns_cleanup_all EXIT

# h1 ARGS / h2 ARGS: godwit on host 1 / host 2, inside that host's namespace.
R1=$(new_root)
R2=$(new_root)
h1() { ip netns exec "$NS1" "$GODWIT" --root "$R1" "$@"; }
h2() { ip netns exec "$NS2" "$GODWIT" --root "$R2" "$@"; }
# hroot 1|2, hns 1|2, hip 1|2: a host's root, namespace, address
hroot() { if [ "$1" = 1 ]; then echo "$R1"; else echo "$R2"; fi; }
hns() { if [ "$1" = 1 ]; then echo "$NS1"; else echo "$NS2"; fi; }
hip() { if [ "$1" = 1 ]; then echo "$H1_IP"; else echo "$H2_IP"; fi; }
hgw() { local n=$1; shift; if [ "$n" = 1 ]; then h1 "$@"; else h2 "$@"; fi; }
# hgwt SECONDS HOST ARGS: hgw with a time limit (an exec in a guest whose kernel broke never
# returns)
hgwt() {
	local t=$1 n=$2
	shift 2
	timeout "$t" ip netns exec "$(hns "$n")" "$GODWIT" --root "$(hroot "$n")" "$@"
}

# The network namespace a process runs in, as the kernel names it ("net:[4026…]").
proc_netns() { readlink "/proc/$1/ns/net" 2>/dev/null; }
ns_inode() { ip netns exec "$1" readlink /proc/self/ns/net; }

# The pids of a container's shim and QEMU on a host: "SHIM QEMU" (empty when gone).
shim_pid_of() { pgrep -f -- "--root $(hroot "$1") .*__shim .* $2\$" || true; }
qemu_pid_of() { pgrep -f -- "qemu-system.*$(hroot "$1")/containers/$2/" || true; }

# migrate_to FROM TO NAME [ARGS...]: start `incoming` on TO, then migrate from FROM; prints
# the migrate output; returns migrate's status.
PORT=7070
migrate_to() {
	local from=$1 to=$2 name=$3
	shift 3
	PORT=$((PORT + 1))
	ip netns exec "$(hns "$to")" "$GODWIT" --root "$(hroot "$to")" \
		incoming --name "$name" --listen "tcp:$(hip "$to"):$PORT" --insecure >/dev/null || return 1
	hgw "$from" migrate "$@" "$name" "tcp:$(hip "$to"):$PORT" 2>&1
}
