#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Settings every node must share (docs/operations.md): node 3 restarted with
# another txn.lease_ms is refused by its peers and refuses them, every side
# naming the key in its log, while nodes 1 and 2 go on committing; restarted
# with the cluster's value, it joins again and catches up.
#
# Isolation as test_cluster.sh: a private copy of local-3node.yaml with its own
# cluster id (0x7a3e), client ports (743x) and temporary directory; every wait
# is bounded; the cluster is brought down and the directory removed on any exit.
#
# usage: test_cluster_settings.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT
set -u
zapd=$1
client=$2
src=$3
. "$(dirname "$0")/cluster_lib.sh" cluster-settings 0x7a3e 743

warm_up
out=$(cl 1 commit 0x100 before 0) || fail "commit before the restart ($out)"

# node 3 with another lease: the state machines would not agree
bad=$tmp/bad.yaml
sed -e 's/^  lease_ms: [0-9]*/  lease_ms: 7000/' "$cfg" >"$bad"
grep -q '^  lease_ms: 7000' "$bad" || fail "no lease_ms to change in the config"
"${cluster[@]}" stop 3 "$cfg" >/dev/null || fail "stop node 3"
ZAP_UP_TIMEOUT=3 "${cluster[@]}" start 3 "$bad" >/dev/null 2>&1 # never learns a leader
for _ in $(seq 1 50); do
	grep -q "settings differ" "$ZAP_RUN_DIR/n3.log" && break
	sleep 0.1
done
grep -q "node 3: node [12]'s settings differ from this node's (txn.lease_ms: 7000 here, 10000 there)" \
	"$ZAP_RUN_DIR/n3.log" || fail "node 3 does not name txn.lease_ms"
for _ in $(seq 1 50); do
	grep -q "settings differ" "$ZAP_RUN_DIR/n1.log" && break
	sleep 0.1
done
grep -q "node 1: node 3's settings differ from this node's (txn.lease_ms: 10000 here, 7000 there)" \
	"$ZAP_RUN_DIR/n1.log" || fail "node 1 does not name txn.lease_ms"
echo "node 3 with txn.lease_ms 7000 refused; both sides name the key"

# the other two go on; node 3 takes no part
for i in $(seq 1 20); do
	out=$(cl 1 commit $((0x200 + i)) during 0) || fail "commit $i through node 1 ($out)"
done
out=$(cl 3 lasttid 2>&1)
want=$(cl 1 lasttid sync) || fail "last tid of node 1"
[ "$out" != "$want" ] || fail "node 3 applied the commits it should not take part in"
echo "nodes 1 and 2 committed 20 transactions without node 3"

# node 3 back with the cluster's settings: it joins and catches up
"${cluster[@]}" stop 3 "$bad" >/dev/null 2>&1
"${cluster[@]}" start 3 "$cfg" >/dev/null || fail "node 3 restarted with the cluster's settings"
for _ in $(seq 1 100); do
	got=$(cl 3 lasttid sync 2>/dev/null) && [ "$got" = "$want" ] && break
	sleep 0.1
done
[ "$got" = "$want" ] || fail "node 3 did not catch up ($got, want $want)"
out=$(cl 3 load $((0x200 + 20)) sync) || fail "node 3 serves the commits made without it ($out)"
grep -q "node 3 now has the same settings" "$ZAP_RUN_DIR/n1.log" ||
	fail "node 1 does not log node 3's agreement"
echo "node 3 restarted with the cluster's settings caught up to $want"
echo "PASS in $((SECONDS - start)) s"
