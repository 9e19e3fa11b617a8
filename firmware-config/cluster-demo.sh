#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zap cluster demo (`make demo`): a local 3-node cluster from
# firmware-config/local-3node.yaml (three zapd processes joined by net_memif),
# driven with the `zap` tool through each node's client service:
#   commits from clients attached to different nodes, reads back from every
#   node, a stale write refused with a conflict, commit/read latency through
#   the leader and a follower, a ZEO 5 session through the ZEO gateways of
#   two nodes (zeo-demo.py: invalidation, a conflict resolved by the client,
#   a BTrees.Length merged by the gateway, round trips), kill -9 of the leader, a commit through a survivor, the
#   dead node restarted and shown caught up (also over ZEO); then cluster down.
#
# usage: cluster-demo.sh BUILD_DIR     (zapd, zap and zap-cluster-client from there)
set -u
build=${1:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cfg=$root/firmware-config/local-3node.yaml
export ZAPD=$root/$build/dataplane/zapd
export ZAP_RUN_DIR=${ZAP_RUN_DIR:-/tmp/zap/run}
zap_bin=$root/$build/dataplane/zap
bench_bin=$root/$build/tests/cluster/zap-cluster-client
cluster=("$here/cluster.sh")
oid=0x10

say() { printf '%s\n' "$*"; }
die() {
	say "zap demo: FAILED: $*"
	exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# zap against node N; prints the output; keeps the wall time in $ms.
zap() {
	local node=$1
	shift
	local t0
	t0=$(now_ms)
	out=$("$zap_bin" --config "$cfg" --node "$node" --timeout 3000 "$@" 2>&1)
	local rc=$?
	ms=$(($(now_ms) - t0))
	return $rc
}

leader() {
	local l
	l=$(grep -ho 'leader is node [0-9]*' "$ZAP_RUN_DIR"/n*.log 2>/dev/null | tail -n 1)
	echo "${l##* }"
}

cleanup() { "${cluster[@]}" down "$cfg" >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 1' INT TERM

for b in "$ZAPD" "$zap_bin" "$bench_bin"; do
	[ -x "$b" ] || die "$b is not built (run make build)"
done
cid=$(awk '/^cluster:/{c=1} c && /id:/{print $2; exit}' "$cfg")
zeo_port_of() { awk -v n="$1" '/- id:/{id=$3} /^ *zeo:/{gsub(/"/,"",$2); if (id==n) {split($2,a,":"); print a[2]}}' "$cfg"; }
port_of() { awk -v n="$1" '/- id:/{id=$3} /client_udp:/{gsub(/"/,"",$2); if (id==n) {split($2,a,":"); print a[2]}}' "$cfg"; }

say "== zap demo: 3 zapd nodes on this box, $cfg"
t0=$(now_ms)
"${cluster[@]}" up "$cfg" || die "cluster up (logs in $ZAP_RUN_DIR)"
say "cluster up in $(($(now_ms) - t0)) ms; leader: node $(leader)"
"${cluster[@]}" status "$cfg"

say ""
say "== commits from clients attached to different nodes"
for n in 1 2 3; do
	o=$((oid + n))
	ok=""
	for _ in $(seq 1 10); do
		zap "$n" put "$o" "written through node $n" && ok=1 && break
		sleep 0.5
	done
	[ -n "$ok" ] || die "put through node $n: $out"
	say "node $n: put oid $(printf '0x%x' $o) -> tid $out   ($ms ms, zap process included)"
done

say ""
say "== read back from every node (read barrier first)"
for n in 1 2 3; do
	for k in 1 2 3; do
		o=$((oid + k))
		zap "$n" get "$o" --sync || die "get $o from node $n: $out"
		say "node $n: oid $(printf '0x%x' $o): $(echo "$out" | tail -n 1)   ($ms ms)"
	done
done

say ""
say "== a write from a stale serial is refused"
zap 1 get $((oid + 1)) --sync || die "get: $out"
serial=$(echo "$out" | awk '/^serial/{print $2}')
zap 2 put $((oid + 1)) "second write" --base "$serial" || die "second write: $out"
say "node 2: put over serial $serial -> tid $out"
if zap 3 put $((oid + 1)) "stale write" --base "$serial"; then
	die "a stale write was accepted"
fi
say "node 3: put over the old serial $serial -> $out"

say ""
say "== latency (zap-cluster-client, 200 commits of one 16-byte record, then 200 loads)"
l=$(leader)
f=$((l % 3 + 1))
for n in "$l" "$f"; do
	role=follower
	[ "$n" = "$l" ] && role=leader
	res=$("$bench_bin" 127.0.0.1 "$(port_of "$n")" "$cid" bench 200 $((0x100 + n)) 2>&1) ||
		die "bench through node $n: $res"
	say "through node $n ($role):"
	echo "$res" | sed 's/^/    /'
done

say ""
say "== a ZEO 5 session (the stock ZODB client protocol) through the gateways of nodes 1 and 3"
res=$(python3 "$here/zeo-demo.py" session 127.0.0.1 "$(zeo_port_of 1)" "$(zeo_port_of 3)" 2>&1) ||
	die "zeo session: $res"
echo "$res" | grep -v '^LAST ' | sed 's/^/    /'
zeo_last=$(echo "$res" | awk '/^LAST /{print $2, $3, $4}')

say ""
say "== kill -9 the leader (node $l) and commit through a survivor"
"${cluster[@]}" kill "$l" "$cfg" >/dev/null
s=$((l % 3 + 1))
t0=$(now_ms)
ok=""
for _ in $(seq 1 20); do
	zap "$s" put $((oid + 4)) "written after the leader died" && ok=1 && break
	sleep 0.25
done
[ -n "$ok" ] || die "commit through node $s after the kill: $out"
after=$out
say "node $s: put oid $(printf '0x%x' $((oid + 4))) -> tid $after   ($(($(now_ms) - t0)) ms incl. the new election)"

say ""
say "== restart node $l: it replays its log and catches up from its peers"
"${cluster[@]}" start "$l" "$cfg" >/dev/null
t0=$(now_ms)
zap "$s" last-tid --sync || die "last tid of node $s: $out"
want=$out
caught=""
for _ in $(seq 1 80); do
	if zap "$l" last-tid && [ "$out" = "$want" ]; then caught=1 && break; fi
	sleep 0.25
done
[ -n "$caught" ] || die "node $l did not catch up (last tid $out, want $want)"
say "node $l caught up in $(($(now_ms) - t0)) ms: last tid $want"
zap "$l" get $((oid + 4)) || die "get from node $l: $out"
say "node $l: oid $(printf '0x%x' $((oid + 4))): $(echo "$out" | tail -n 1)"

if [ -n "$zeo_last" ]; then
	# shellcheck disable=SC2086
	res=$(python3 "$here/zeo-demo.py" check 127.0.0.1 "$(zeo_port_of "$l")" $zeo_last 2>&1) ||
		die "zeo check through node $l: $res"
	say "node $l over ZEO: $res"
fi

say ""
"${cluster[@]}" status "$cfg"
say "zap demo: done (logs in $ZAP_RUN_DIR; the cluster is stopped on exit)"
