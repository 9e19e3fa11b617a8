#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Concurrent conflicting commits on the local 3-node cluster: in each of
# ROUNDS rounds, two zap-cluster-client processes attached to two different
# nodes (the pair rotates, so leader and followers all take part) commit the
# same oid from the same base serial at the same time. Exactly one must win
# ("tid T", exit 0) and the other get a conflict (exit 3, "conflict oid O
# serial T" naming the winner's tid); after a read barrier every node holds
# the winner's serial and data, and the history grows by one revision a round.
#
# Isolation as test_cluster.sh: a private copy of local-3node.yaml with its own
# cluster id (0x7a6e), client ports (746x) and temporary directory; every wait
# is bounded; the cluster is brought down and the directory removed on any exit.
#
# usage: test_cluster_conflict.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT [ROUNDS]
set -u
zapd=$1
client=$2
src=$3
rounds=${4:-20}
oid=0x100
. "$(dirname "$0")/cluster_lib.sh" cluster-conflict 0x7a6e 746

warm_up

base=0
for r in $(seq 1 "$rounds"); do
	a=$(((r - 1) % 3 + 1))
	b=$((a % 3 + 1))
	cl "$a" commit "$oid" "a$r" "$base" >"$tmp/a.out" 2>&1 &
	pa=$!
	cl "$b" commit "$oid" "b$r" "$base" >"$tmp/b.out" 2>&1 &
	pb=$!
	wait "$pa"
	ra=$?
	wait "$pb"
	rb=$?
	oa=$(cat "$tmp/a.out")
	ob=$(cat "$tmp/b.out")
	if [ $ra -eq 0 ] && [ $rb -eq 3 ]; then
		win="a$r" wout=$oa lout=$ob
	elif [ $ra -eq 3 ] && [ $rb -eq 0 ]; then
		win="b$r" wout=$ob lout=$oa
	else
		fail "round $r (nodes $a, $b, base $base): exits $ra ($oa) and $rb ($ob), want one 0 and one 3"
	fi
	tid=${wout#tid }
	case "$tid" in 0x*) ;; *) fail "round $r: winner printed '$wout'" ;; esac
	[ "$lout" = "conflict oid $oid serial $tid" ] ||
		fail "round $r: loser printed '$lout', want 'conflict oid $oid serial $tid'"
	for n in 1 2 3; do
		out=$(cl "$n" load "$oid" sync) || fail "round $r: load from node $n"
		[ "$out" = "serial $tid data $win" ] ||
			fail "round $r: node $n read '$out', want serial $tid data $win"
	done
	echo "round $r: nodes $a/$b, winner $win tid $tid"
	base=$tid
done

# Exactly one revision per round on every node.
for n in 1 2 3; do
	out=$(cl "$n" history "$oid" | head -n 2) || fail "history from node $n"
	want="history $rounds
$base"
	[ "$out" = "$want" ] || fail "node $n history head '$out', want '$want'"
done
echo "history: $rounds revisions on every node"

"${cluster[@]}" down "$cfg" >/dev/null || fail "cluster down"
for i in 1 2 3; do
	[ ! -d "/run/dpdk/zap-7a6e-n$i" ] || fail "/run/dpdk/zap-7a6e-n$i left behind"
	! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
	grep -q "zapd: node $i: stopped;" "$ZAP_RUN_DIR/n$i.log" || fail "node $i did not stop cleanly"
done
echo "PASS in $((SECONDS - start)) s"
