#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Failover under a stream of commits on the local 3-node cluster:
# zap-cluster-client `stream N OID_BASE` commits N new objects one by one
# through a follower (each commit one call, resent with the same request id
# until answered: exactly-once) and prints each acknowledged (oid, tid);
# once some are acknowledged, kill -9 the leader. The stream must finish
# (bounded), with no commit applied twice or left unacknowledged. Then every
# acknowledged (oid, tid) must be current with exactly that serial and data
# and a history of exactly one revision on both live nodes (after a read
# barrier), and on the dead node once restarted and caught up.
#
# Isolation as test_cluster.sh: a private copy of local-3node.yaml with its own
# cluster id (0x7a7e), client ports (747x) and temporary directory; every wait
# is bounded; the cluster is brought down and the directory removed on any exit.
#
# usage: test_cluster_failover.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT [N]
set -u
zapd=$1
client=$2
src=$3
n_obj=${4:-1000}
obase=0x1000
spid=""
acks() { grep -c '^ack ' "$tmp/stream.out" 2>/dev/null; }
. "$(dirname "$0")/cluster_lib.sh" cluster-failover 0x7a7e 747
on_fail() {
	echo "--- stream output (tail)" >&2
	tail -n 10 "$tmp/stream.out" >&2 2>/dev/null
}
on_cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; }

warm_up

leader=$(grep -o 'leader is node [0-9]*' "$ZAP_RUN_DIR/n1.log" | tail -n 1)
leader=${leader##* }
case "$leader" in 1 | 2 | 3) ;; *) fail "no leader known to node 1" ;; esac
via=$((leader % 3 + 1))
other=$((via % 3 + 1))

# The stream through a follower pauses after 10 acks (a handshake, so the
# kill lands mid-stream however the machine schedules the processes); kill -9
# the leader, then let the stream go on through the failover.
cl "$via" stream "$n_obj" "$obase" 10 "$tmp/go" >"$tmp/stream.out" 2>"$tmp/stream.err" &
spid=$!
for _ in $(seq 1 1500); do
	grep -q '^paused$' "$tmp/stream.out" 2>/dev/null && break
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.02
done
grep -q '^paused$' "$tmp/stream.out" || fail "stream via node $via did not reach 10 acks"
"${cluster[@]}" kill "$leader" "$cfg" >/dev/null
killed_at=$(acks)
touch "$tmp/go"
[ "$killed_at" -lt "$n_obj" ] || fail "the stream finished before the kill ($killed_at acks)"
echo "stream via node $via: killed leader node $leader after $killed_at acks"

# The stream must finish (its own bound is 60 s; ours 75 s).
for _ in $(seq 1 300); do
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.25
done
if kill -0 "$spid" 2>/dev/null; then
	fail "stream still running 75 s after the kill ($(acks) acks)"
fi
wait "$spid"
src_rc=$?
spid=""
[ $src_rc -eq 0 ] || fail "stream exit $src_rc: $(cat "$tmp/stream.err")"
[ "$(acks)" -eq "$n_obj" ] || fail "stream: $(acks) acks, want $n_obj"
echo "stream finished: $(acks) acks, $(grep -c '^again ' "$tmp/stream.out") new calls after UNAVAILABLE/BUSY, $(grep '^done ' "$tmp/stream.out")"

# Every ack on both live nodes (after a barrier), one revision each.
for n in "$via" "$other"; do
	out=$(cl "$n" verify "$obase" sync <"$tmp/stream.out") || fail "node $n: $out"
	[ "$out" = "verified $n_obj" ] || fail "node $n: '$out'"
done
out=$(cl "$via" load $((obase + n_obj)) sync)
[ $? -eq 4 ] || fail "oid past the stream exists: '$out'"
echo "live nodes $via, $other: $n_obj acknowledged commits, one revision each"

# Restart the dead node; once caught up it holds them too.
"${cluster[@]}" start "$leader" "$cfg" >/dev/null
want=$(cl "$via" lasttid sync) || fail "last tid of node $via"
caught=""
got=""
for _ in $(seq 1 120); do
	got=$(cl "$leader" lasttid 2>/dev/null) && [ "$got" = "$want" ] && caught=1 && break
	sleep 0.25
done
[ -n "$caught" ] || fail "restarted node $leader: last tid '$got', want '$want'"
out=$(cl "$leader" verify "$obase" <"$tmp/stream.out") || fail "restarted node $leader: $out"
[ "$out" = "verified $n_obj" ] || fail "restarted node $leader: '$out'"
echo "restarted node $leader caught up ($want) and holds all $n_obj"

"${cluster[@]}" down "$cfg" >/dev/null || fail "cluster down"
for i in 1 2 3; do
	[ ! -d "/run/dpdk/zap-7a7e-n$i" ] || fail "/run/dpdk/zap-7a7e-n$i left behind"
	! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
	grep -q "zapd: node $i: stopped;" "$ZAP_RUN_DIR/n$i.log" || fail "node $i did not stop cleanly"
done
echo "PASS in $((SECONDS - start)) s"
