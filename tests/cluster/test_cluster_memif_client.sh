#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The native client protocol on a node's DPDK client port (docs/client.md,
# "On a DPDK client port"): the local 3-node cluster, each node with its
# `role: client` memif port; a client over a memif port of its own
# (zap-cluster-client-memif, bench/native_memif.c) attaches to node 2's.
#
#   a stream of N one-shot commits through node 2's client port, each
#   acknowledged once; every acknowledged (oid, tid) read back on every node
#   through the kernel UDP path, after a read barrier; a load and a synced
#   load through the client port; zap-bench --target native-memif, commit and
#   load, a short closed loop without errors; malformed frames of every kind
#   into the port while the cluster runs; after cluster down, node 2's report
#   counts exactly the injected frames as drops (frame drops, bad datagrams,
#   ARP drops) and the stream's frames as received.
#
# Isolation: cluster_lib.sh's private config (cluster id 0x7a4f, client UDP
# ports 7441..7443, log dirs and memif sockets under its temp dir). Every wait
# is bounded; the test takes about 20 s.
#
# usage: test_cluster_memif_client.sh ZAPD CLUSTER_CLIENT CLUSTER_CLIENT_MEMIF ZAP_BENCH SOURCE_ROOT [N [PER_KIND]]
set -u
zapd=$1
client=$2
mclient=$3
bench=$4
src=$5
n_obj=${6:-300}
per_kind=${7:-10}
obase=0x3000
. "$(dirname "$0")/cluster_lib.sh" cluster-memif-client 0x7a4f 744
on_fail() {
	echo "--- memif client output (tail)" >&2
	tail -n 5 "$tmp"/m-*.out "$tmp"/m-*.err >&2 2>/dev/null
}

via=2
sock=$tmp/memif-client-n$via.sock
node_ip=10.99.1.$via
node_port=7100
mcl() { ZAP_MEMIF_SOCKET=$sock timeout 90 "$mclient" "$node_ip" "$node_port" "$cid" "$@"; }

warm_up

# 1. A stream of commits through node 2's client port.
mcl stream "$n_obj" "$obase" >"$tmp/m-stream.out" 2>"$tmp/m-stream.err" ||
	fail "stream through the client port of node $via"
acks=$(grep -c '^ack ' "$tmp/m-stream.out")
[ "$acks" = "$n_obj" ] || fail "stream: $acks acks, want $n_obj"
echo "stream via node $via's client port: $acks commits acknowledged"

# 2. Every acknowledged commit is on every node, read over kernel UDP.
for n in 1 2 3; do
	out=$(grep '^ack ' "$tmp/m-stream.out" | cl "$n" verify "$obase" sync) ||
		fail "verify on node $n: $out"
	[ "$out" = "verified $n_obj" ] || fail "node $n: '$out'"
done
echo "every acknowledged commit verified on nodes 1, 2, 3 (kernel UDP)"

# 3. Reads through the client port.
out=$(mcl load "$obase" sync) || fail "synced load through the client port"
t0=$(grep -m 1 '^ack ' "$tmp/m-stream.out" | awk '{print $3}')
[ "$out" = "serial $t0 data s0" ] || fail "load through the client port: '$out', want serial $t0 data s0"
mcl load 0x99 >/dev/null || fail "load of the warm-up object through the client port"
echo "loads through the client port: $out"

# 4. zap-bench over memif: commits and loads, a short closed loop.
for op in commit load; do
	res=$(timeout 60 "$bench" --target native-memif --memif "$sock" --addr "$node_ip:$node_port" \
		--cluster-id "$cid" --op "$op" --objects 1 --oid-base 0x99 --duration 0.5 --warmup 0 \
		2>"$tmp/m-bench-$op.err") || fail "zap-bench native-memif $op: $(cat "$tmp/m-bench-$op.err")"
	echo "$res"
	[[ "$res" == *" errors 0 "* ]] || fail "zap-bench native-memif $op had errors: $res"
done

# 5. Malformed frames into the client port.
inj=$(mcl inject "$per_kind") || fail "inject: $inj"
echo "$inj"
read -r _ _ want_frames _ want_dgrams _ want_arp <<<"$inj"

# 6. The node's own count, from its final report.
"${cluster[@]}" down "$cfg" >/dev/null 2>&1
line=$(grep -h '^  client port ' "$ZAP_RUN_DIR/n$via.log" | tail -n 1)
[ -n "$line" ] || fail "node $via's report has no client port line"
echo "node $via:$line"
[[ "$line" =~ frame\ drops\ ([0-9]+),\ multiseg\ ([0-9]+),\ bad\ datagrams\ ([0-9]+)\),\ arp\ ([0-9]+)\ \(drops\ ([0-9]+)\) ]] ||
	fail "cannot parse '$line'"
got_frames=${BASH_REMATCH[1]}
got_dgrams=${BASH_REMATCH[3]}
got_arp_replies=${BASH_REMATCH[4]}
got_arp_drops=${BASH_REMATCH[5]}
[ "$got_frames" = "$want_frames" ] || fail "frame drops $got_frames, injected $want_frames"
[ "$got_dgrams" = "$want_dgrams" ] || fail "bad datagrams $got_dgrams, injected $want_dgrams"
[ "$got_arp_drops" = "$want_arp" ] || fail "arp drops $got_arp_drops, injected $want_arp"
[ "$got_arp_replies" -ge 1 ] || fail "no ARP reply counted"
for r in truncated not_ipv4 ip_checksum udp_checksum not_for_us; do
	[[ "$line" == *" $r=$per_kind"* ]] || fail "drop reason $r is not $per_kind in '$line'"
done
echo "PASS ($((SECONDS - start)) s)"
