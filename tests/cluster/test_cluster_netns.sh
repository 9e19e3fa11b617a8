#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The netns cluster end to end (root only): firmware-config/netns-cluster.sh
# runs three zapd processes, each in its own network namespace, replication
# over net_af_packet on veths joined by a bridge; clients in the switch
# namespace reach each node's client_udp through the kernel.
#
#   a commit through each node (zap-cluster-client), read back from every
#   node after a read barrier; a put through each node with the `zap` CLI
#   (addressing nodes through the config's client_udp), read back with
#   `zap get --sync` everywhere; the switch kernel resolves each node's
#   replication address by ARP (the node answers for its own address);
#   a commit captured on the replication segment with tcpdump (when
#   installed) holds ZAP1 frames; cluster down, and nothing is left:
#   namespaces, veths, zapd processes, /run/dpdk/<prefix> folders.
#
# Isolation: a private copy of netns-3node.yaml with its own cluster id
# (0x7a9c, so its own EAL file prefixes) and log dirs under a temporary
# directory, namespaces zapns-nt-*. Every wait is bounded; the cluster is
# brought down and the namespaces deleted on any exit.
#
# usage: test_cluster_netns.sh ZAPD CLUSTER_CLIENT ZAP_CLI SOURCE_ROOT
set -u
zapd=$1
client=$2
zap=$3
src=$4
. "$(dirname "$0")/netns_lib.sh" nt 0x7a9c 100
echo "netns cluster up in $((SECONDS - start)) s: $(grep -o 'leader known: [0-9]*' "$tmp/up.out" | sort -u | tr '\n' ' ')"

warm_up

# 1. A commit through each node, read back from every node.
for n in 1 2 3; do
	oid=$((0x10 + n))
	out=$(cl "$n" commit "$oid" "v$n" 0) || fail "commit of oid $oid through node $n: $out"
	t=${out#tid }
	for r in 1 2 3; do
		out=$(cl "$r" load "$oid" sync) || fail "load of oid $oid from node $r"
		[ "$out" = "serial $t data v$n" ] || fail "node $r read '$out', want serial $t data v$n"
	done
	echo "commit via node $n (tid $t): read back on nodes 1, 2, 3"
done

# 2. The zap CLI, addressing the nodes through the config (client_udp).
for n in 1 2 3; do
	oid=$((0x20 + n))
	serial=$(sw "$zap" --config "$cfg" --node "$n" put "$oid" "cli-$n") ||
		fail "zap put through node $n: $serial"
	for r in 1 2 3; do
		out=$(sw "$zap" --config "$cfg" --node "$r" get "$oid" --sync) ||
			fail "zap get of oid $oid from node $r: $out"
		echo "$out" | grep -qx "serial $serial" || fail "zap get from node $r: '$out', want serial $serial"
		echo "$out" | grep -qx "text cli-$n" || fail "zap get from node $r: '$out', want text cli-$n"
	done
	echo "zap put via node $n (serial $serial): zap get --sync on nodes 1, 2, 3"
done

# 3. The kernel on the replication segment resolves each node's address.
sw ip neigh flush dev zbr-r >/dev/null 2>&1
for n in 1 2 3; do
	# A datagram to the discard port makes the kernel ask; the node drops it.
	sw bash -c "echo arp-probe >/dev/udp/10.122.0.$n/9" 2>/dev/null
	want=$(printf '02:7a:9e:00:00:%02x' "$n")
	got=""
	for _ in $(seq 1 20); do
		got=$(sw ip neigh show 10.122.0."$n" dev zbr-r | awk '/lladdr/ {print $3}')
		[ -n "$got" ] && break
		sleep 0.05
	done
	[ "$got" = "$want" ] || fail "switch kernel resolved 10.122.0.$n to '$got', want $want"
done
echo "ARP: the switch kernel resolved nodes 1, 2, 3 to their replication MACs"

# 4. A commit captured on the replication segment (node 1's bridge port).
if command -v tcpdump >/dev/null; then
	ip netns exec "$ZAPNS-sw" tcpdump --immediate-mode -i zr1 -U -w "$tmp/commit.pcap" udp port 7000 \
		2>"$tmp/tcpdump.err" &
	tpid=$!
	for _ in $(seq 1 50); do
		grep -q 'listening on' "$tmp/tcpdump.err" && break
		sleep 0.05
	done
	cl 1 commit 0x30 captured 0 >/dev/null || fail "commit during the capture"
	sleep 0.2
	kill -TERM "$tpid" 2>/dev/null
	wait "$tpid"
	frames=$(tcpdump -r "$tmp/commit.pcap" 'udp[8:4] = 0x5a415031' 2>/dev/null | wc -l)
	[ "$frames" -ge 2 ] || fail "capture of a commit on zr1: $frames ZAP1 frames"
	echo "capture on zr1: $frames ZAP1 frames during one commit"
else
	echo "capture: skipped (no tcpdump)"
fi

"${netns[@]}" status "$cfg" | grep -q "node 3: up" || fail "status"
down_check
echo "PASS in $((SECONDS - start)) s"
