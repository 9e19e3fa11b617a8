#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The local 3-node cluster end to end: firmware-config/cluster.sh starts three
# zapd processes (net_memif between them), libzapclient (zap-cluster-client)
# talks to their client services over loopback UDP.
#
#   commit through node 1; read it back from nodes 2 and 3 after a read
#   barrier; a commit from a stale base serial fails with a conflict; a
#   two-phase commit, an aborted vote, new oids; kill -9 the leader; commit again through a surviving node; restart the dead node
#   and check it caught up (same last tid, same record); cluster down: every
#   node's report shows both peers' doorbells mapped and sleeps a ring ended,
#   and no doorbell file is left.
#
# Isolation: a private copy of local-3node.yaml with its own cluster id (so its
# own EAL file prefixes), client ports, log dirs and memif socket names under a
# temporary directory. Every wait is bounded; the whole test takes < 90 s; the
# cluster is brought down and the directory removed on any exit.
#
# usage: test_cluster.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT
set -u
zapd=$1
client=$2
src=$3
. "$(dirname "$0")/cluster_lib.sh" cluster-test 0x7a5e 745

# 1. Commit through node 1 (the first commit may meet a fresh election: retry).
out=""
for _ in $(seq 1 20); do
	out=$(cl 1 commit 7 v1 0) && break
	out=""
	sleep 0.5
done
[ -n "$out" ] || fail "first commit through node 1"
t1=${out#tid }
echo "commit via node 1: tid $t1"

# 2. Read it back from nodes 2 and 3 after a read barrier.
for n in 2 3; do
	out=$(cl "$n" load 7 sync) || fail "load from node $n"
	[ "$out" = "serial $t1 data v1" ] || fail "node $n read '$out', want serial $t1 data v1"
	echo "read via node $n: $out"
done

# 3. A commit from a stale base serial is a conflict.
out=$(cl 2 commit 7 stale 0)
rc=$?
[ $rc -eq 3 ] || fail "stale-base commit: exit $rc ($out), want 3 (conflict)"
echo "stale-base commit via node 2: $out"

# 3b. Two-phase commit through node 3, an aborted vote through node 2, new oids.
out=$(cl 3 2pc 8 p1 0 commit) || fail "prepare + commit via node 3 ($out)"
tp=${out#tid }
out=$(cl 2 2pc 8 p2 "$tp" abort) || fail "prepare + abort via node 2 ($out)"
out=$(cl 1 load 8 sync) || fail "load of oid 8 via node 1"
[ "$out" = "serial $tp data p1" ] || fail "oid 8 via node 1 read '$out', want serial $tp data p1"
out=$(cl 2 newoids 10) || fail "new oids via node 2"
case "$out" in "oids "*" 10") ;; *) fail "new oids: '$out'" ;; esac
echo "2pc commit and abort, $out: ok"

# 3c. A native one-shot transaction of 24 MiB (24 objects of 1 MiB), larger
# than one consensus value (paxos.batch_bytes): it goes to the log in chunks
# and every node holds it byte for byte.
t0=$SECONDS
out=$(cl 2 big 4096 24) || fail "24 MiB one-shot commit via node 2 ($out)"
for n in 1 2 3; do
	got=$(cl "$n" bigcheck 4096 24 sync) || fail "24 MiB transaction on node $n ($got)"
done
echo "24 MiB native transaction via node 2, identical on every node: ok ($((SECONDS - t0)) s)"

# 4. Kill -9 the leader.
leader=$(grep -o 'leader is node [0-9]*' "$ZAP_RUN_DIR/n1.log" | tail -n 1)
leader=${leader##* }
case "$leader" in 1 | 2 | 3) ;; *) fail "no leader known to node 1" ;; esac
"${cluster[@]}" kill "$leader" "$cfg" >/dev/null
echo "killed leader node $leader"
survivor=$((leader % 3 + 1))

# 5. Commit again through a surviving node (bounded: new election + retries).
t2=""
for _ in $(seq 1 20); do
	if out=$(cl "$survivor" commit 7 v2 "$t1"); then
		t2=${out#tid }
		break
	fi
	# A retry after a lost reply comes from a new client: the first try may
	# have committed. Then the object holds v2 already.
	if out=$(cl "$survivor" load 7 sync) && [ "${out##* data }" = v2 ]; then
		t2=$(echo "$out" | awk '{print $2}')
		break
	fi
	sleep 0.5
done
[ -n "$t2" ] || fail "commit through surviving node $survivor after the leader died"
echo "commit via node $survivor after the kill: tid $t2"

# 6. Restart the dead node; it catches up from its log and its peers.
"${cluster[@]}" start "$leader" "$cfg" >/dev/null
other=$((survivor % 3 + 1))
[ "$other" = "$leader" ] && other=$((other % 3 + 1))
want=$(cl "$survivor" lasttid sync) || fail "last tid of node $survivor"
caught=""
for _ in $(seq 1 60); do
	got=$(cl "$leader" lasttid 2>/dev/null) && [ "$got" = "$want" ] && caught=1 && break
	sleep 0.25
done
[ -n "$caught" ] || fail "restarted node $leader: last tid '$got', want '$want'"
out=$(cl "$leader" load 7) || fail "load from restarted node $leader"
[ "$out" = "serial $t2 data v2" ] || fail "restarted node $leader read '$out'"
out=$(cl "$other" load 7 sync) || fail "load from node $other"
[ "$out" = "serial $t2 data v2" ] || fail "node $other read '$out'"
echo "restarted node $leader caught up: $want, $out"

"${cluster[@]}" down "$cfg" >/dev/null || fail "cluster down"
for i in 1 2 3; do
	[ ! -d "/run/dpdk/zap-7a5e-n$i" ] || fail "/run/dpdk/zap-7a5e-n$i left behind"
	! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
	grep -q "zapd: node $i: stopped;" "$ZAP_RUN_DIR/n$i.log" || fail "node $i did not stop cleanly"
	# doorbells: each node mapped both peers' bell files and was woken by rings
	bells=$(grep 'bells: lcore sleeps' "$ZAP_RUN_DIR/n$i.log" | tail -n 1)
	case "$bells" in
	*"peer bells mapped 2 of 2"*) ;;
	*) fail "node $i: '$bells', want both peer bells mapped" ;;
	esac
	woken=$(echo "$bells" | sed -n 's/.*lcore sleeps [0-9]* (woken early \([0-9]*\)).*/\1/p')
	[ "${woken:-0}" -gt 0 ] || fail "node $i: no lcore sleep ended by a ring ('$bells')"
done
left=$(find "$tmp" -name '*.bell-n*' | wc -l)
[ "$left" = 0 ] || fail "cluster down left $left doorbell files"
echo "doorbells: every node mapped its peers' bells and was woken by them"
echo "PASS in $((SECONDS - start)) s"
