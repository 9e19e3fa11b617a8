# SPDX-License-Identifier: Apache-2.0
#
# Shared set-up of the cluster tests, sourced after the script has set
# `zapd`, `client` (zap-cluster-client) and `src` (the source root):
#
#   . cluster_lib.sh NAME CLUSTER_ID PORT_PREFIX
#
# It writes a private copy of local-3node.yaml under a temp dir (its own
# cluster id, so its own EAL file prefixes; client ports PORT_PREFIX1..3;
# log dirs and memif sockets under the temp dir), starts the cluster, and
# defines: fail MSG (node log tails, exit 1), port N, cl N ARGS (the client
# against node N), warm_up (one commit, retried while a first election
# settles). The cluster is brought down and the temp dir removed on any exit.
# A script may set log_keys (YAML lines, each "  key: value") before sourcing:
# they are added to the private config's log section (checkpoint settings).
# A script may redefine on_fail and on_cleanup to add its own steps. With
# ZAP_KEEP_LOGS=DIR set, fail copies the node logs to DIR before the temp dir
# goes.
name=$1
cid=$2
pfx=$3
tmp=$(mktemp -d "/tmp/zap-$name.XXXXXX")
cfg=$tmp/cluster.yaml
export ZAPD=$zapd ZAP_RUN_DIR=$tmp/run ZAP_UP_TIMEOUT=30
cluster=("$src/firmware-config/cluster.sh")

on_fail() { :; }
on_cleanup() { :; }

cleanup() {
	on_cleanup
	"${cluster[@]}" down "$cfg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	[ -n "${ZAP_KEEP_LOGS:-}" ] && cp -r "$ZAP_RUN_DIR" "$ZAP_KEEP_LOGS"
	echo "FAIL: $*" >&2
	on_fail
	for i in 1 2 3; do
		echo "--- node $i log (tail)" >&2
		tail -n 20 "$ZAP_RUN_DIR/n$i.log" >&2 2>/dev/null
	done
	exit 1
}

# Node N's client service port in the private config.
port() { echo "$pfx$1"; }
cl() {
	local node=$1
	shift
	"$client" 127.0.0.1 "$(port "$node")" "$cid" "$@"
}

# One commit through node 1 on oid 0x99 (a first election may still settle).
warm_up() {
	local ok=""
	for _ in $(seq 1 20); do
		cl 1 commit 0x99 warm 0 >/dev/null 2>&1 && ok=1 && break
		sleep 0.5
	done
	[ -n "$ok" ] || fail "warm-up commit through node 1"
}

# Client ports 720N -> ${pfx}N and ZEO ports 810N -> 8${pfx#7}N: no two tests
# (nor a cluster the operator runs) share a port.
sed -e "s#/tmp/zap#$tmp#g" -e "s/0x7a01/$cid/" -e "s/127.0.0.1:720\([0-9]\)/127.0.0.1:$pfx\1/" \
	-e "s/127.0.0.1:810\([0-9]\)/127.0.0.1:8${pfx#7}\1/" \
	"$src/firmware-config/local-3node.yaml" >"$cfg"
# each log_keys line replaces that key of the log section, or is added to it
while IFS= read -r kv; do
	[ -n "$kv" ] || continue
	key=${kv%%:*}
	awk -v key="$key" -v kv="$kv" '
		/^[^ #]/ { in_log = ($0 ~ /^log:/) }
		in_log && index($0, key ":") == 1 { print kv; done = 1; next }
		{ print }
		END { if (!done) exit 3 }' "$cfg" >"$cfg.new"
	if [ $? -eq 3 ]; then
		awk -v kv="$kv" '{ print } /^log:/ { print kv }' "$cfg" >"$cfg.new"
	fi
	mv "$cfg.new" "$cfg"
done <<<"${log_keys:-}"
"$zapd" --check-config "$cfg" >/dev/null || fail "private config does not check"

start=$SECONDS
"${cluster[@]}" up "$cfg" || fail "cluster up"
