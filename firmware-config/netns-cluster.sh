#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zap netns cluster: the nodes of one YAML config, each zapd in its own network
# namespace, replication over net_af_packet on veth pairs joined by a bridge.
#
#   netns-cluster.sh up     [CONFIG]  build the namespaces (if missing), start the
#                                     nodes not running yet, wait for a leader
#   netns-cluster.sh down   [CONFIG]  stop the nodes, end what still runs in the
#                                     namespaces, delete them (and so the veths),
#                                     remove /run/dpdk/<prefix> folders
#   netns-cluster.sh status [CONFIG]  the namespaces and one line per node
#   netns-cluster.sh start|stop|kill NODE [CONFIG]   one node (as cluster.sh)
#   netns-cluster.sh exec sw|NODE CMD ...   run CMD in the switch namespace
#                                     (clients, captures) or in a node's one
#
# CONFIG defaults to firmware-config/netns-3node.yaml. Topology (docs/operations.md):
# namespaces $ZAPNS-n<id> (one per node) and $ZAPNS-sw (the switch, where the
# clients run); ZAPNS defaults to "zapns". In node N's namespace, interface zr
# (replication: the node's replication MAC, no kernel address, opened by
# the config's net_af_packet vdev with iface=zr) and zc (the client_udp address
# of node N, /24). In the switch: bridge zbr-r over zr1..zrN (replication
# segment, .254 of the replication /24 for ARP checks and captures) with a
# static forwarding entry per node MAC and unknown-unicast and multicast
# flooding off (broadcast, i.e. ARP, still floods), so a node receives only the
# frames addressed to it; bridge zbr-c over zc1..zcN
# (.254 of the client /24). IPv6 is off in every namespace and zbr-r sends no
# IGMP: nothing but zap frames and ARP on the replication segment.
#
# Node processes run through firmware-config/cluster.sh, with this script as its
# zapd (it enters the node's namespace and execs the real one, so pid files
# hold zapd's pid). Real zapd: $ZAPD, else build-node/ or build/ under the
# source tree. Logs and pid files: $ZAP_RUN_DIR (default /tmp/zapns/run).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
ns=${ZAPNS:-zapns}

die() {
	echo "netns-cluster.sh: $*" >&2
	exit 1
}

# Called by cluster.sh as its zapd: --config F --node N -> zapd in zapns-nN.
if [ "${1:-}" = "--config" ]; then
	node=""
	prev=""
	for a in "$@"; do
		[ "$prev" = "--node" ] && node=$a
		prev=$a
	done
	[ -n "$node" ] || die "node exec: no --node"
	exec ip netns exec "$ns-n$node" "$ZAPNS_ZAPD" "$@"
fi

cmd=${1:-}
shift || true
node_arg=""
case "$cmd" in
start | stop | kill | exec)
	node_arg=${1:-}
	shift || true
	;;
esac
if [ "$cmd" = exec ]; then
	[ -n "$node_arg" ] && [ $# -gt 0 ] || die "exec sw|NODE CMD ..."
	[ "$node_arg" = sw ] || node_arg=n$node_arg
	exec ip netns exec "$ns-$node_arg" "$@"
fi
config=${1:-$root/firmware-config/netns-3node.yaml}
[ -f "$config" ] || die "no config file $config"
export ZAP_RUN_DIR=${ZAP_RUN_DIR:-/tmp/zapns/run}

find_zapd() {
	if [ -n "${ZAPD:-}" ]; then
		echo "$ZAPD"
		return
	fi
	for d in build-node build; do
		if [ -x "$root/$d/dataplane/zapd" ]; then
			echo "$root/$d/dataplane/zapd"
			return
		fi
	done
	die "no zapd binary: build first (make build) or set ZAPD"
}

# One line per node: "ID REPL_MAC CLIENT_UDP_HOST REPL_IPV4".
node_table() {
	awk '/^nodes:/ {f = 1; next} /^[a-z]/ {f = 0}
		f && /^  - id:/ {id = $3}
		f && id != "" && /^    replication:/ {
			m = $0; sub(/.*mac: *"/, "", m); sub(/".*/, "", m)
			ip = $0; sub(/.*ipv4: */, "", ip); sub(/[ ,}].*/, "", ip)
			mac[id] = m; rip[id] = ip }
		f && id != "" && /^    client_udp:/ {
			h = $2; gsub(/"/, "", h); sub(/:[0-9]+$/, "", h); cu[id] = h; order[++n] = id }
		END {for (i = 1; i <= n; i++) {k = order[i]; print k, mac[k], cu[k], rip[k]}}' "$config"
}

# a.b.c.d -> a.b.c.254
switch_addr() { echo "${1%.*}.254"; }

in_ns() {
	local n=$1
	shift
	ip netns exec "$n" "$@"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

no_ipv6() {
	in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

topology_up() {
	local sw="$ns-sw" rows
	rows=$(node_table)
	[ -n "$rows" ] || die "no nodes with replication and client_udp in $config"
	if ns_exists "$sw"; then
		return 0
	fi
	ip netns add "$sw" || die "ip netns add $sw"
	no_ipv6 "$sw"
	ip -n "$sw" link set lo up
	# No multicast snooping (it joins 224.0.0.106) and no IGMP reports for
	# link-local groups: the bridge's own multicast floods every port.
	in_ns "$sw" sysctl -qw net.ipv4.igmp_link_local_mcast_reports=0
	ip -n "$sw" link add zbr-r type bridge mcast_snooping 0 || die "bridge zbr-r"
	ip -n "$sw" link add zbr-c type bridge || die "bridge zbr-c"
	local id mac cu rip first_cu="" first_rip=""
	while read -r id mac cu rip; do
		local nn="$ns-n$id"
		[ -n "$first_cu" ] || first_cu=$cu
		[ -n "$first_rip" ] || first_rip=$rip
		ns_exists "$nn" && ip netns del "$nn"
		ip netns add "$nn" || die "ip netns add $nn"
		no_ipv6 "$nn"
		ip -n "$nn" link set lo up
		# replication: zr (node) <-> zr<id> (bridge port)
		ip -n "$sw" link add "zr$id" type veth peer name zr netns "$nn" || die "veth zr$id"
		ip -n "$nn" link set zr address "$mac" up
		ip -n "$sw" link set "zr$id" master zbr-r up
		bridge -n "$sw" link set dev "zr$id" flood off mcast_flood off
		bridge -n "$sw" fdb replace "$mac" dev "zr$id" master static
		# client: zc (node, client_udp address) <-> zc<id> (bridge port)
		ip -n "$sw" link add "zc$id" type veth peer name zc netns "$nn" || die "veth zc$id"
		ip -n "$nn" addr add "$cu/24" dev zc
		ip -n "$nn" link set zc up
		ip -n "$sw" link set "zc$id" master zbr-c up
	done <<<"$rows"
	ip -n "$sw" addr add "$(switch_addr "$first_rip")/24" dev zbr-r
	ip -n "$sw" addr add "$(switch_addr "$first_cu")/24" dev zbr-c
	ip -n "$sw" link set zbr-r up
	ip -n "$sw" link set zbr-c up
}

# End every process left in our namespaces (by pid), then delete them.
topology_down() {
	local n pids
	for n in $(ip netns list | awk '{print $1}' | grep -E "^$ns-(sw|n[0-9]+)$"); do
		pids=$(ip netns pids "$n" 2>/dev/null)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	return 0
}

cluster_sh() {
	ZAPNS_ZAPD=$(find_zapd) ZAPD="$here/netns-cluster.sh" ZAPNS=$ns \
		"$here/cluster.sh" "$@"
}

case "$cmd" in
up)
	[ "$(id -u)" -eq 0 ] || die "needs root (ip netns)"
	"$(find_zapd)" --check-config "$config" >/dev/null || die "config does not check"
	while read -r id _; do
		d=$(awk -v id="$id" '/^  - id:/ {cur = $3} cur == id && /^    log_dir:/ {print $2}' \
			"$config")
		[ -n "$d" ] && mkdir -p "$d"
	done <<<"$(node_table)"
	topology_up
	cluster_sh up "$config"
	;;
down)
	cluster_sh down "$config"
	topology_down
	;;
status)
	for n in $(ip netns list | awk '{print $1}' | grep -E "^$ns-(sw|n[0-9]+)$"); do
		echo "netns $n: $(ip -n "$n" -br link show | awk '$1 != "lo" {printf "%s %s  ", $1, $2}')"
	done
	cluster_sh status "$config"
	;;
start | stop | kill)
	[ -n "$node_arg" ] || die "$cmd NODE"
	cluster_sh "$cmd" "$node_arg" "$config"
	;;
*)
	sed -n '4,15p' "$0" >&2
	exit 2
	;;
esac
