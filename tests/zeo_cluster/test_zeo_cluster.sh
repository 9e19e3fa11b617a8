#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ZEO 5 gateway cases (test_zeo_cluster.py) on the local 3-node cluster.
#
# Isolation as the other cluster tests: cluster_lib.sh writes a private copy
# of local-3node.yaml with its own cluster id (0x7aae), client ports (749x)
# and temporary directory. Its template here is local-3node.yaml with the ZEO
# listeners moved to 8191..8193 and the admin listeners to 9191..9193. Every
# wait is bounded; the cluster is brought down and the directory removed on
# any exit. The Python cases SIGKILL the leader last; afterwards every node
# log must be free of sanitizer reports.
#
# usage: test_zeo_cluster.sh ZAPD CLUSTER_CLIENT SOURCE_ROOT [--only CASE,...] [--extra]
# (the options go to test_zeo_cluster.py)
set -u
zapd=$1
client=$2
root=$3
shift 3
here=$root/tests/zeo_cluster
export PYTHONDONTWRITEBYTECODE=1

stage=$(mktemp -d /tmp/zap-zeo-cluster-tpl.XXXXXX)
mkdir -p "$stage/firmware-config"
# txn.max_bytes 300M: the too_large_refused case goes past it with a 301 MiB blob.
# ZEO_CLUSTER_RING=N: store.txn_ring_slots N (the undo_past_ring case).
ring_sed=()
if [ -n "${ZEO_CLUSTER_RING:-}" ]; then
	ring_sed=(-e "s/^store:\$/store:\n  txn_ring_slots: $ZEO_CLUSTER_RING/")
fi
sed -e 's/127.0.0.1:810\([0-9]\)/127.0.0.1:819\1/' -e 's/127.0.0.1:910\([0-9]\)/127.0.0.1:919\1/' \
	-e 's/^  max_bytes: [0-9]*[KMGT]* /  max_bytes: 300M /' "${ring_sed[@]}" \
	"$root/firmware-config/local-3node.yaml" >"$stage/firmware-config/local-3node.yaml"
ln -s "$root/firmware-config/cluster.sh" "$stage/firmware-config/cluster.sh"
src=$stage
. "$root/tests/cluster/cluster_lib.sh" zeo-cluster 0x7aae 749
cluster=("$root/firmware-config/cluster.sh")
rm -rf "$stage"
grep -q '127.0.0.1:8191' "$cfg" || fail "private config has no ZEO port 8191"
grep -q '^  max_bytes: 300M' "$cfg" || fail "private config has no txn.max_bytes 300M"
[ -z "${ZEO_CLUSTER_RING:-}" ] || grep -q "^  txn_ring_slots: $ZEO_CLUSTER_RING" "$cfg" ||
	fail "private config has no store.txn_ring_slots $ZEO_CLUSTER_RING"

warm_up

python3 "$here/test_zeo_cluster.py" --ports 8191,8192,8193 --config "$cfg" \
	--cluster-sh "${cluster[0]}" --run-dir "$ZAP_RUN_DIR" "$@" || fail "ZEO cases failed"

"${cluster[@]}" down "$cfg" >/dev/null || fail "cluster down"
for i in 1 2 3; do
	! grep -q 'Sanitizer\|runtime error' "$ZAP_RUN_DIR/n$i.log" || fail "sanitizer report, node $i"
	# no payload of a large transaction left open (the killed node has no final report)
	! grep '^  large:' "$ZAP_RUN_DIR/n$i.log" | grep -qv 'open 0 (0 bytes)' ||
		fail "node $i stopped with a large transaction's payload still open"
done
echo "PASS in $((SECONDS - start)) s"
