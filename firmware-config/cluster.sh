#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zap local cluster: every node of one YAML config as a zapd process on this box.
#
#   cluster.sh up     [CONFIG]   start the nodes not running yet, wait for a leader
#   cluster.sh down   [CONFIG]   stop them (SIGTERM, then SIGKILL after 10 s), remove
#                                /run/dpdk/<prefix> folders and memif socket files
#   cluster.sh status [CONFIG]   one line per node: pid, alive, leader it knows
#   cluster.sh start NODE [CONFIG] / stop NODE [CONFIG] / kill NODE [CONFIG]
#                                one node (kill = SIGKILL, for fault tests)
#
# CONFIG defaults to firmware-config/local-3node.yaml. Logs and pid files go to
# $ZAP_RUN_DIR (default /tmp/zap/run): nN.log, nN.pid. The zapd binary is
# $ZAPD, else the first of build-node/, build/ under the source tree.
# A node counts as up once its log says which node leads ("leader is node L",
# L != 0); `up` fails after $ZAP_UP_TIMEOUT seconds (default 30) without that.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cmd=${1:-}
shift || true
node_arg=""
case "$cmd" in
start | stop | kill)
	node_arg=${1:-}
	shift || true
	;;
esac
config=${1:-$root/firmware-config/local-3node.yaml}
run_dir=${ZAP_RUN_DIR:-/tmp/zap/run}
up_timeout=${ZAP_UP_TIMEOUT:-30}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

[ -f "$config" ] || die "no config file $config"

find_zapd() {
	if [ -n "${ZAPD:-}" ]; then
		echo "$ZAPD"
		return
	fi
	for d in build-node build; do
		if [ -x "$root/$d/dataplane/zapd" ]; then
			echo "$root/$d/dataplane/zapd"
			return
		fi
	done
	die "no zapd binary: build first (make build) or set ZAPD"
}

# Node ids, in file order: the "- id: N" items of the nodes: list.
node_ids() {
	awk '/^nodes:/ {f = 1; next} /^[a-z]/ {f = 0} f && /^  - id:/ {print $3}' "$config"
}

# The EAL file prefix zapd derives: zap-<cluster id in hex>-n<node>.
prefix_of() {
	local cid
	cid=$(awk '/^cluster:/ {f = 1; next} /^[a-z]/ {f = 0} f && /^  id:/ {print $2; exit}' \
		"$config")
	printf 'zap-%x-n%s' "$((cid))" "$1"
}

pid_of() {
	local f="$run_dir/n$1.pid"
	[ -f "$f" ] && cat "$f"
}

alive() {
	local pid
	pid=$(pid_of "$1") || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

leader_of() {
	local l
	l=$(grep -o 'leader is node [0-9]*' "$run_dir/n$1.log" 2>/dev/null | tail -n 1)
	echo "${l##* }"
}

start_node() {
	local id=$1 zapd
	zapd=$(find_zapd)
	if alive "$id"; then
		echo "node $id: already running (pid $(pid_of "$id"))"
		return 0
	fi
	mkdir -p "$run_dir"
	# A crashed node can leave file-backed memif sockets behind.
	clean_sockets "$id"
	: >"$run_dir/n$id.log"
	ZAPD_EAL_LOG_LEVEL=${ZAPD_EAL_LOG_LEVEL:-notice} \
		setsid "$zapd" --config "$config" --node "$id" >>"$run_dir/n$id.log" 2>&1 </dev/null &
	echo $! >"$run_dir/n$id.pid"
	echo "node $id: started (pid $!, log $run_dir/n$id.log)"
}

stop_node() {
	local id=$1 sig=${2:-TERM} pid
	pid=$(pid_of "$id") || return 0
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "-$sig" "$pid" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "node $id: no exit 10 s after SIG$sig: SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
		fi
	fi
	rm -f "$run_dir/n$id.pid"
	echo "node $id: stopped"
}

# The socket= paths of node $1's vdev lines that match the awk pattern $2.
memif_sockets() {
	awk -v id="$1" '/^  - id:/ {cur = $3} cur == id && /vdev:/ && /'"$2"'/' "$config" |
		grep -o 'socket=[^,"]*' | cut -d= -f2
}

# File-backed memif sockets (socket-abstract=no) of node $1's ports.
clean_sockets() {
	memif_sockets "$1" 'socket-abstract=no' | while read -r s; do
		[ -S "$s" ] && rm -f "$s"
	done
	return 0
}

# The doorbell file node $1 keeps beside each memif link's socket
# (docs/operations.md). Only at `down`: a restarted node reuses its file, so
# the peers' mappings of it stay good.
clean_bells() {
	memif_sockets "$1" 'net_memif' | while read -r s; do
		[ -f "$s.bell-n$1" ] && rm -f "$s.bell-n$1"
	done
	return 0
}

wait_up() {
	local deadline=$((SECONDS + up_timeout)) pending
	while :; do
		pending=""
		for id in $(node_ids); do
			alive "$id" || die "node $id exited; see $run_dir/n$id.log"
			local l
			l=$(leader_of "$id")
			[ -n "$l" ] && [ "$l" != 0 ] || pending="$pending $id"
		done
		[ -z "$pending" ] && break
		[ $SECONDS -lt $deadline ] || die "no leader after ${up_timeout}s (nodes:$pending)"
		sleep 0.2
	done
	status
}

status() {
	for id in $(node_ids); do
		local state=down
		alive "$id" && state="up (pid $(pid_of "$id"))"
		echo "node $id: $state, leader known: $(leader_of "$id")"
	done
}

case "$cmd" in
up)
	for id in $(node_ids); do start_node "$id"; done
	wait_up
	;;
down)
	for id in $(node_ids); do stop_node "$id"; done
	for id in $(node_ids); do
		clean_sockets "$id"
		clean_bells "$id"
		rm -rf "/run/dpdk/$(prefix_of "$id")" "/var/run/dpdk/$(prefix_of "$id")"
	done
	;;
status) status ;;
start)
	[ -n "$node_arg" ] || die "start NODE"
	start_node "$node_arg"
	;;
stop)
	[ -n "$node_arg" ] || die "stop NODE"
	stop_node "$node_arg"
	;;
kill)
	[ -n "$node_arg" ] || die "kill NODE"
	stop_node "$node_arg" KILL
	;;
*)
	sed -n '4,18p' "$0" >&2
	exit 2
	;;
esac
