#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A follower whose log directory is wiped rejoins the local 3-node cluster:
#
#   commit N1 objects (zap-cluster-client stream through node 1); stop a
#   follower F, remove its log directory (its store is a memfd and goes with
#   the process); commit N2 more through the other follower; restart F with
#   an empty log while N3 more are committed through the other follower; F
#   must catch up to the same last tid and serve every acknowledged record
#   (after a read barrier: serial, data, one revision), and answer "no such
#   object" past them. Then kill -9 the leader: the rejoined F and the
#   remaining original node must form the quorum that commits N3 more
#   (through F), held by both.
#
# With CHECKPOINT = K > 0 (the meson test cluster-rejoin-snapshot passes 50),
# every node checkpoints its state every K applied slots
# (log.checkpoint_slots in its private config, docs/log.md) and compacts its
# in-memory log, so
# F cannot catch up from the log alone: the test then also requires that F
# installed a snapshot (its "installed snapshot" log line), that a peer
# served one ("sent snapshot"), and that F, restarted, loads its checkpoint
# file ("loaded checkpoint"). Without it, F catches up from the log. Each
# run F is also restarted from what it wrote since the wipe and checked
# again.
#
# Isolation as test_cluster.sh: a private copy of local-3node.yaml with its own
# cluster id (0x7a8e), client ports (748x) and temporary directory; every wait
# is bounded; the cluster is brought down and the directory removed on any exit.
#
# The snapshot variant uses cluster id 0x7a8f and client ports 749x.
#
# usage: test_cluster_rejoin.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT [CHECKPOINT [N1 N2 N3]]
set -u
zapd=$1
client=$2
src=$3
ckpt=${4:-0}
n1=${5:-300}
n2=${6:-200}
n3=${7:-100}
if [ "$ckpt" -gt 0 ]; then
	log_keys="  checkpoint_slots: $ckpt"
	cid=0x7a8f
	pfx=749
	name=cluster-rejoin-snapshot
else
	# no checkpoint: the wiped node catches up from the peers' logs
	log_keys=$'  checkpoint_slots: 0\n  checkpoint_bytes: 0\n  checkpoint_seconds: 0'
	cid=0x7a8e
	pfx=748
	name=cluster-rejoin
fi
spid=""
. "$(dirname "$0")/cluster_lib.sh" "$name" "$cid" "$pfx"
on_fail() {
	for f in "$tmp"/stream*.out; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f") (tail)" >&2
		tail -n 5 "$f" >&2
	done
}
on_cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; }

leader_of() {
	local l
	l=$(grep -o 'leader is node [0-9]*' "$ZAP_RUN_DIR/n$1.log" | tail -n 1)
	echo "${l##* }"
}

# stream VIA N BASE OUT: commit N objects from oid BASE through node VIA.
stream() {
	local via=$1 n=$2 base=$3 out=$4
	cl "$via" stream "$n" "$base" >"$out" 2>"$out.err" &
	spid=$!
	for _ in $(seq 1 300); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.25
	done
	kill -0 "$spid" 2>/dev/null && fail "stream via node $via still running after 75 s"
	wait "$spid"
	local rc=$?
	spid=""
	[ $rc -eq 0 ] || fail "stream via node $via: exit $rc: $(cat "$out.err")"
	local acks
	acks=$(grep -c '^ack ' "$out")
	[ "$acks" -eq "$n" ] || fail "stream via node $via: $acks acks, want $n"
}

# check NODE BASE N OUT [sync]: every ack of OUT is current on NODE.
check() {
	local node=$1 base=$2 n=$3 out=$4 sync=${5:-sync}
	local got
	got=$(cl "$node" verify "$base" $sync <"$out") || fail "node $node, oids from $base: $got"
	[ "$got" = "verified $n" ] || fail "node $node, oids from $base: '$got'"
}

# wait_sync NODE: NODE takes a read barrier, i.e. it reaches a quorum again
# (a node restarted from its own log has the data before its links are up).
# Bounded, 30 s.
wait_sync() {
	local node=$1
	for _ in $(seq 1 60); do
		cl "$node" sync >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	fail "node $node takes no read barrier after 30 s"
}

# wait_tid NODE WANT: NODE's last tid reaches WANT (bounded, 30 s).
wait_tid() {
	local node=$1 want=$2 got=""
	for _ in $(seq 1 120); do
		got=$(cl "$node" lasttid 2>/dev/null) && [ "$got" = "$want" ] && return 0
		sleep 0.25
	done
	fail "node $node: last tid '$got', want '$want'"
}

warm_up

leader=$(leader_of 1)
case "$leader" in 1 | 2 | 3) ;; *) fail "no leader known to node 1" ;; esac
f=$((leader % 3 + 1)) # the follower that is wiped
other=$((f % 3 + 1)) # the third node

stream 1 "$n1" 0x1000 "$tmp/stream1.out"
echo "committed $n1 objects (leader node $leader)"
# an 8 MiB transaction, larger than one consensus value (PAYLOAD chunks)
out=$(cl "$f" big 0x5000 8) || fail "8 MiB transaction via node $f ($out)"
# a 4 MiB blob: its bytes go to every node's blob area, the stores keep its hash
out=$(cl "$f" blob 0x6000 4) || fail "4 MiB blob via node $f ($out)"

"${cluster[@]}" stop "$f" "$cfg" >/dev/null
grep -q "zapd: node $f: stopped;" "$ZAP_RUN_DIR/n$f.log" || fail "node $f did not stop cleanly"
cp "$ZAP_RUN_DIR/n$f.log" "$tmp/n$f.before-wipe.log"
logdir="$tmp/n$f"
[ -d "$logdir" ] && ls "$logdir"/*.zlog >/dev/null 2>&1 || fail "no log segments in $logdir"
rm -rf "$logdir"
echo "stopped node $f and removed its log directory"

stream "$other" "$n2" 0x2000 "$tmp/stream2.out"
echo "committed $n2 more through node $other"
out=$(cl "$other" big 0x5800 8) || fail "8 MiB transaction via node $other ($out)"
echo "and two 8 MiB transactions, one before the wipe, one while node $f was down"

# Restart F with its empty log while N3 more commits go through the other
# follower, so F catches up under load.
t0=$SECONDS
"${cluster[@]}" start "$f" "$cfg" >/dev/null
stream "$other" "$n3" 0x2800 "$tmp/stream2b.out"
want=$(cl "$other" lasttid sync) || fail "last tid of node $other"
wait_tid "$f" "$want"
echo "node $f rejoined with an empty log and caught up to $want in $((SECONDS - t0)) s" \
	"($n3 commits meanwhile)"
grep -q 'records replayed' "$ZAP_RUN_DIR/n$f.log" || fail "node $f: no start-up line"
grep -q '(0 records replayed)' "$ZAP_RUN_DIR/n$f.log" || fail "node $f did not start from an empty log"

check "$f" 0x1000 "$n1" "$tmp/stream1.out"
check "$f" 0x2000 "$n2" "$tmp/stream2.out"
check "$f" 0x2800 "$n3" "$tmp/stream2b.out"
check "$other" 0x1000 "$n1" "$tmp/stream1.out"
for base in 0x5000 0x5800; do
	got=$(cl "$f" bigcheck "$base" 8 sync) || fail "node $f: 8 MiB transaction at $base: $got"
done
# the blob's file: F rebuilt from a snapshot fetches it from a peer (BLOB_REQ),
# F rebuilt from the log writes it again
ref=$(cl "$f" blobref 0x6000 sync) || fail "node $f: blob reference of 0x6000 ($ref)"
set -- $ref # len N hash HEX
[ "$2" = $((4 << 20)) ] || fail "node $f: blob length $2"
for d in "$tmp/n$f" "$tmp/n$other"; do
	file="$d/blobs/${4:0:2}/$4"
	for _ in $(seq 100); do [ -f "$file" ] && break; sleep 0.1; done
	[ -f "$file" ] || fail "no blob file $4 in $d"
	[ "$(b2sum -l 256 "$file" | cut -d' ' -f1)" = "$4" ] || fail "blob file $file: bytes differ"
done
echo "node $f holds the 4 MiB blob's file ($4), byte for byte"
out=$(cl "$f" load $((0x2800 + n3)) sync)
[ $? -eq 4 ] || fail "node $f: oid past the streams exists: '$out'"
echo "node $f serves all $((n1 + n2 + n3)) acknowledged records"

if [ "$ckpt" -gt 0 ]; then
	grep -q "installed snapshot" "$ZAP_RUN_DIR/n$f.log" ||
		fail "node $f caught up without installing a snapshot"
	grep -q "sent snapshot" "$ZAP_RUN_DIR/n$leader.log" "$ZAP_RUN_DIR/n$other.log" ||
		fail "no node reports a snapshot sent"
	grep -h "installed snapshot" "$ZAP_RUN_DIR/n$f.log" | tail -n 1
	grep -q "blob files missing; fetching" "$ZAP_RUN_DIR/n$f.log" ||
		fail "node $f installed a snapshot without fetching the blob file it lacks"
	grep -h "blob fetch done" "$ZAP_RUN_DIR/n$f.log" | tail -n 1
fi

# Restart F once more: it rebuilds from the log it wrote since the wipe and,
# with checkpoints, from its checkpoint file first (the installed snapshot
# or a later checkpoint of its own).
"${cluster[@]}" stop "$f" "$cfg" >/dev/null
grep -q "zapd: node $f: stopped;" "$ZAP_RUN_DIR/n$f.log" || fail "node $f did not stop cleanly"
cp "$ZAP_RUN_DIR/n$f.log" "$tmp/n$f.rejoined.log"
"${cluster[@]}" start "$f" "$cfg" >/dev/null
wait_tid "$f" "$want"
wait_sync "$f"
check "$f" 0x1000 "$n1" "$tmp/stream1.out"
check "$f" 0x2800 "$n3" "$tmp/stream2b.out"
echo "node $f restarted from its own log: $(grep -o '([0-9]* records replayed)' "$ZAP_RUN_DIR/n$f.log")"
if [ "$ckpt" -gt 0 ]; then
	grep -q "loaded checkpoint" "$ZAP_RUN_DIR/n$f.log" ||
		fail "restarted node $f did not load its checkpoint file"
	grep -h "loaded checkpoint" "$ZAP_RUN_DIR/n$f.log"
fi

if [ "$ckpt" -gt 0 ]; then
	# F stopped with its log kept while the others commit past two of their
	# checkpoints: their logs no longer reach back to F's last slot. F fetches
	# a snapshot, writes it as its checkpoint (its log keeps its promise),
	# restarts itself from it (same pid) and catches up from there.
	"${cluster[@]}" stop "$f" "$cfg" >/dev/null
	stream "$other" "$n2" 0x4000 "$tmp/stream4.out"
	want=$(cl "$other" lasttid sync) || fail "last tid of node $other"
	t0=$SECONDS
	"${cluster[@]}" start "$f" "$cfg" >/dev/null
	wait_tid "$f" "$want"
	grep -q "takes node [0-9]*'s snapshot of slot [0-9]* as its checkpoint and restarts" \
		"$ZAP_RUN_DIR/n$f.log" || fail "node $f did not take a snapshot over its own state"
	grep -q "zapd: restarting" "$ZAP_RUN_DIR/n$f.log" || fail "node $f did not restart itself"
	wait_sync "$f"
	check "$f" 0x4000 "$n2" "$tmp/stream4.out"
	check "$f" 0x1000 "$n1" "$tmp/stream1.out"
	echo "node $f, down past its peers' compaction point with its log kept, took a snapshot," \
		"restarted from it and caught up in $((SECONDS - t0)) s"
fi

# Kill the leader: the rejoined node is needed for every quorum from here.
l=$(leader_of "$f")
[ "$l" = "$f" ] && l=$leader
"${cluster[@]}" kill "$l" "$cfg" >/dev/null
live=$f
for i in 1 2 3; do [ "$i" != "$l" ] && [ "$i" != "$f" ] && live=$i; done
echo "killed node $l; live: $f (rejoined), $live"
stream "$f" "$n3" 0x3000 "$tmp/stream3.out"
check "$f" 0x3000 "$n3" "$tmp/stream3.out"
check "$live" 0x3000 "$n3" "$tmp/stream3.out"
check "$live" 0x1000 "$n1" "$tmp/stream1.out"
check "$live" 0x2800 "$n3" "$tmp/stream2b.out"
echo "committed $n3 more through node $f with node $l down; both live nodes hold them"

"${cluster[@]}" down "$cfg" >/dev/null || fail "cluster down"
for i in 1 2 3; do
	[ ! -d "/run/dpdk/zap-${cid#0x}-n$i" ] || fail "/run/dpdk/zap-${cid#0x}-n$i left behind"
	! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
	[ "$i" = "$l" ] || grep -q "zapd: node $i: stopped;" "$ZAP_RUN_DIR/n$i.log" ||
		fail "node $i did not stop cleanly"
	# with checkpoints, a node keeps no image in memory once its file is written
	if [ "$ckpt" -gt 0 ] && [ "$i" != "$l" ]; then
		grep "^  snapshots:" "$ZAP_RUN_DIR/n$i.log" | tail -n 1 |
			grep -q "served from the file [1-9]" ||
			fail "node $i still served its images from memory"
	fi
done
echo "PASS in $((SECONDS - start)) s"
