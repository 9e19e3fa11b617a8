#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Bad frames on the replication segment under a stream of commits, in the
# netns cluster (root only): zap-cluster-client `stream N` commits N new
# objects through node 2; once it runs, zap-inject-frames sends to every node
# (one injector per node, in parallel, the kinds interleaved, 5 ms apart),
# through its bridge port zr<N> in the switch namespace, PER_KIND of each:
#   garbage    random bytes behind an Ethernet header to the node
#   truncated  well-formed frames cut short
#   badmac     well-formed frames with a changed MAC tag (UDP checksum right)
#   foreign    frames MACed under another cluster id
#   unknown    frames from a node id outside the node table
# and an ARP request for each node's replication address from the switch
# kernel's address, which the node must answer with its replication MAC.
# The injection must end before the stream does. Then: the stream finishes with every commit acknowledged exactly once;
# every acknowledged (oid, tid) is on every node (after a read barrier);
# after cluster down, each node's final report counts exactly the frames
# injected to it as decode drops (the bridge forwards nothing else but zap
# frames between members and ARP, so any other count is a frame that got
# through or got lost), and exactly one ARP reply. The node's report gives
# decode drops as one total; if it also has a line
# "  wire drops: REASON=N ..." (zap_wire_drop_name names), each reason must
# match the injector's own decode of the frames it sent.
# Stale epochs are not injected: zapd's io stage decodes with min_epoch 0.
#
# Isolation: a private copy of netns-3node.yaml with its own cluster id
# (0x7a9d) and log dirs under a temporary directory, namespaces
# zapns-inj-*; every wait is bounded; everything is torn down on any exit.
#
# usage: test_cluster_inject.sh ZAPD CLUSTER_CLIENT INJECT_FRAMES SOURCE_ROOT [N [PER_KIND]]
set -u
zapd=$1
client=$2
inject=$3
src=$4
n_obj=${5:-1500}
per_kind=${6:-20}
obase=0x2000
kinds=(garbage truncated badmac foreign unknown)
spid=""
acks() { grep -c '^ack ' "$tmp/stream.out" 2>/dev/null; }
. "$(dirname "$0")/netns_lib.sh" inj 0x7a9d 150
on_fail() {
	echo "--- stream output (tail)" >&2
	tail -n 5 "$tmp/stream.out" >&2 2>/dev/null
	echo "--- injector output" >&2
	cat "$tmp/inject.out" >&2 2>/dev/null
}
on_cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; }

warm_up
via=2
cl "$via" stream "$n_obj" "$obase" 10 "$tmp/go" >"$tmp/stream.out" 2>"$tmp/stream.err" &
spid=$!
for _ in $(seq 1 500); do
	grep -q '^paused$' "$tmp/stream.out" 2>/dev/null && break
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.02
done
grep -q '^paused$' "$tmp/stream.out" || fail "stream via node $via did not reach 10 acks"
touch "$tmp/go"

# Inject while the stream runs: one injector per node, in parallel, every
# kind interleaved frame by frame, 5 ms apart (0.5 s for 20 of each kind).
at_start=$(acks)
ipids=()
for n in 1 2 3; do
	sw "$inject" "$cfg" "$n" "zr$n" all "$per_kind" 5000 >"$tmp/inject-$n.out" &
	ipids+=($!)
done
for n in 1 2 3; do
	wait "${ipids[$((n - 1))]}" || fail "injector for node $n: $(cat "$tmp/inject-$n.out")"
done
at_end=$(acks)
cat "$tmp"/inject-[123].out >"$tmp/inject.out"
for n in 1 2 3; do
	sw "$inject" "$cfg" "$n" zbr-r arp 1000 >>"$tmp/inject.out" || fail "ARP probe of node $n"
done
echo "injected $per_kind frames of each kind into each node while the stream went from $at_start to $at_end acks"
grep '^arp ' "$tmp/inject.out"
[ "$at_end" -lt "$n_obj" ] || fail "the stream finished before the injection did ($at_end acks)"

# The stream must finish (its own bound is 60 s; ours 75 s).
for _ in $(seq 1 300); do
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.25
done
kill -0 "$spid" 2>/dev/null && fail "stream still running after 75 s ($(acks) acks)"
wait "$spid"
s_rc=$?
spid=""
[ $s_rc -eq 0 ] || fail "stream exit $s_rc: $(cat "$tmp/stream.err")"
[ "$(acks)" -eq "$n_obj" ] || fail "stream: $(acks) acks, want $n_obj"
echo "stream finished: $(acks) acks, $(grep '^done ' "$tmp/stream.out")"

for n in 1 2 3; do
	out=$(cl "$n" verify "$obase" sync <"$tmp/stream.out") || fail "node $n: $out"
	[ "$out" = "verified $n_obj" ] || fail "node $n: '$out'"
done
echo "nodes 1, 2, 3: all $n_obj acknowledged commits, one revision each"

down_check

# Expected drops per node (total and per reason) from the injector's lines
# "KIND node N: sent C; reasons: R=C ...".
for n in 1 2 3; do
	want=$(awk -v n="$n" '$2 == "node" && $3 == n":" {sub(";", "", $5); s += $5} END {print s + 0}' \
		"$tmp/inject.out")
	log="$ZAP_RUN_DIR/n$n.log"
	io=$(grep '^  io: rx ' "$log" | tail -n 1)
	got=$(echo "$io" | sed -n 's/.*(decode drops \([0-9]*\),.*/\1/p')
	arp=$(echo "$io" | sed -n 's/.*, arp \([0-9]*\),.*/\1/p')
	[ -n "$got" ] || fail "node $n: no io line in the final report"
	[ "$got" -eq "$want" ] || fail "node $n: $got decode drops, $want frames injected ($io)"
	[ "$arp" = 1 ] || fail "node $n: $arp ARP replies, want 1 ($io)"
	by_reason=$(grep '^  wire drops:' "$log" | tail -n 1)
	if [ -n "$by_reason" ]; then
		exp=$(awk -v n="$n" '$2 == "node" && $3 == n":" {
				for (i = 7; i <= NF; i++) {split($i, kv, "="); c[kv[1]] += kv[2]}}
			END {for (k in c) print k "=" c[k]}' "$tmp/inject.out" | sort)
		have=$(echo "${by_reason#*:}" | tr ' ' '\n' | grep '=' | grep -v '=0$' | sort)
		[ "$exp" = "$have" ] || fail "node $n: drops by reason '$(echo $have)', want '$(echo $exp)'"
		echo "node $n: $got decode drops ($(echo $have)), 1 ARP reply"
	else
		echo "node $n: $got decode drops = $want injected, 1 ARP reply (no per-reason counters in the report)"
	fi
done
echo "PASS in $((SECONDS - start)) s"
