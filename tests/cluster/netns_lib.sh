# SPDX-License-Identifier: Apache-2.0
#
# Shared set-up of the netns cluster tests, sourced after the script has set
# `zapd`, `client` (zap-cluster-client) and `src` (the source root):
#
#   . netns_lib.sh NAME CLUSTER_ID LIMIT_S
#
# Needs root (network namespaces). It writes a private copy of
# netns-3node.yaml under a temp dir (its own cluster id, so its own EAL file
# prefixes; log dirs under the temp dir), picks namespace names
# zapns-NAME-n1..3 and zapns-NAME-sw, starts the cluster with
# firmware-config/netns-cluster.sh, and defines: fail MSG (node log tails,
# exit 1), sw CMD (run in the switch namespace, where clients run),
# cl N ARGS (zap-cluster-client against node N), node_ip N (client address),
# warm_up (one commit, retried while a first election settles), down_check
# (cluster down, then: no namespace, no zapd, no /run/dpdk folder left, every
# node stopped cleanly, no sanitizer report). The cluster is brought down,
# the namespaces deleted and the temp dir removed on any exit, and after
# LIMIT_S seconds a watchdog sends the script SIGTERM (keep it below the
# meson timeout: meson's SIGKILL would leave no time for the cleanup). A
# script may redefine on_fail and on_cleanup to add its own steps.
name=$1
cid=$2
limit=$3
[ "$(id -u)" -eq 0 ] || {
	echo "SKIP: needs root (network namespaces)"
	exit 77
}
tmp=$(mktemp -d "/tmp/zapns-$name.XXXXXX")
cfg=$tmp/cluster.yaml
export ZAPD=$zapd ZAP_RUN_DIR=$tmp/run ZAP_UP_TIMEOUT=30 ZAPNS=zapns-$name
netns=("$src/firmware-config/netns-cluster.sh")
prefix_hex=$(printf '%x' "$((cid))")

on_fail() { :; }
on_cleanup() { :; }

# SIGTERM to this script after $limit s, unless cleanup ends the watchdog first.
wd_pid=""
(
	exec >/dev/null 2>&1 </dev/null
	sleep "$limit" &
	sp=$!
	trap 'kill $sp; exit 0' TERM
	wait $sp && kill -TERM $$ 2>/dev/null
) &
wd_pid=$!

cleanup() {
	[ -n "$wd_pid" ] && kill "$wd_pid" 2>/dev/null
	on_cleanup
	"${netns[@]}" down "$cfg" >/dev/null 2>&1
	for i in 1 2 3; do rm -rf "/run/dpdk/zap-$prefix_hex-n$i"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "FAIL: stopped by a signal (the watchdog sends SIGTERM after $limit s)" >&2; exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	on_fail
	for i in 1 2 3; do
		echo "--- node $i log (tail)" >&2
		tail -n 20 "$ZAP_RUN_DIR/n$i.log" >&2 2>/dev/null
	done
	exit 1
}

sw() { ip netns exec "$ZAPNS-sw" "$@"; }
node_ip() { echo "10.122.1.$1"; }
cl() {
	local node=$1
	shift
	sw "$client" "$(node_ip "$node")" 7200 "$cid" "$@"
}

warm_up() {
	local ok=""
	for _ in $(seq 1 20); do
		cl 1 commit 0x99 warm 0 >/dev/null 2>&1 && ok=1 && break
		sleep 0.5
	done
	[ -n "$ok" ] || fail "warm-up commit through node 1"
}

down_check() {
	"${netns[@]}" down "$cfg" >/dev/null || fail "cluster down"
	! ip netns list | grep -q "^$ZAPNS-" || fail "namespaces left: $(ip netns list | grep "^$ZAPNS-")"
	for i in 1 2 3; do
		[ ! -d "/run/dpdk/zap-$prefix_hex-n$i" ] || fail "/run/dpdk/zap-$prefix_hex-n$i left behind"
		! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
		grep -q "zapd: node $i: stopped;" "$ZAP_RUN_DIR/n$i.log" || fail "node $i did not stop cleanly"
	done
}

sed -e "s#/tmp/zapns#$tmp#g" -e "s/0x7a9e/$cid/" "$src/firmware-config/netns-3node.yaml" >"$cfg"
"$zapd" --check-config "$cfg" >/dev/null || fail "private config does not check"
# What a killed earlier run left (its namespaces, the processes in them).
ns_left=$(ip netns list | awk '{print $1}' | grep "^$ZAPNS-")
if [ -n "$ns_left" ]; then
	echo "note: removing what an earlier run left:" $ns_left
	"${netns[@]}" down "$cfg" >/dev/null 2>&1
fi

start=$SECONDS
"${netns[@]}" up "$cfg" >"$tmp/up.out" 2>&1 || {
	cat "$tmp/up.out" >&2
	fail "netns cluster up"
}
