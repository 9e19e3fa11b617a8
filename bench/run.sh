#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zap latency benchmark runner (docs/benchmarks.md): `make bench` / `make bench-quick`.
#
#   bench/run.sh [--quick]
#
# Environment: BUILD (build folder, default build), BENCH_OUT (results,
# default bench/results/<UTC timestamp>), BENCH_OBJECTS (objects loaded,
# default 1000 with --quick, 1000000 without), BENCH_SCENARIOS (a glob of
# scenario files, default bench/scenarios/*.yaml), ZEO_REF (HOST:PORT of a
# second ZEO 5 server to compare zap's ZEO gateway with; unset: none).
#
# Steps: baselines (disk floor on the log's filesystem: a 100 B append +
# fdatasync, and 100 MiB in 1 MiB writes + one fdatasync for the large
# transactions and blobs; memif ping-pong with the cluster's polling policy); a private 3-node zap cluster (fsync) from a
# copy of local-3node.yaml (cluster id 0x7abb, client ports 7961..7963, ZEO
# ports 8971..8973, log dirs and memif sockets under $BENCH_OUT/cluster; the
# native-memif scenarios attach to the leader's memif client port there); the
# store loaded; every scenario; the etcd comparison's zap side; the same
# cluster again with log.durability memory; a 3-node etcd cluster on loopback
# (client ports 27371..27373) with its data on disk, then on tmpfs; the
# report (bench/report.py). Every process started here is stopped on exit.
#
# ZEO_REF=HOST:PORT: a ZEO 5 server the operator started (this script never
# starts, stops or fetches one; docs/benchmarks.md says how to run a stock
# one). Before the cluster starts, the same objects as zap's (same oids, same
# size) are committed to it through ZEO (zap-bench --zeo --populate; objects
# already there from an earlier run are kept). After the fsync cluster is
# stopped, every ZEO scenario (target: zeo) runs again against it, same
# client and parameters, labelled zref-NAME; the report puts the two side
# by side with ratios.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$root/$BUILD ;; esac
out=${BENCH_OUT:-$root/bench/results/$(date -u +%Y%m%d-%H%M%S)}
if [ $quick = 1 ]; then objects=${BENCH_OBJECTS:-1000}; else objects=${BENCH_OBJECTS:-1000000}; fi
scenarios=${BENCH_SCENARIOS:-$here/scenarios/*.yaml}
zeo_ref=${ZEO_REF:-}
if [ -n "$zeo_ref" ] && ! [[ $zeo_ref =~ ^[^:,[:space:]]+:[0-9]+$ ]]; then
	echo "run.sh: ZEO_REF=$zeo_ref: want HOST:PORT" >&2
	exit 2
fi
bench=$bdir/bench/zap-bench
memif=$bdir/bench/zap-bench-memif
zapd=$bdir/dataplane/zapd
cid=0x7abb
warmup=1
[ $quick = 1 ] && warmup=0.5

for b in "$bench" "$memif" "$zapd"; do
	[ -x "$b" ] || {
		echo "run.sh: no $b: build first" >&2
		exit 1
	}
done
mkdir -p "$out"/{raw,csv,logs,cluster} || exit 1
out=$(cd "$out" && pwd)
work=$out/cluster
etcd_tmpfs=/dev/shm/zap-bench-etcd-$$
etcd_pids=()
cluster_cfg=""
export ZAPD=$zapd ZAP_UP_TIMEOUT=40
t0=$SECONDS

log() { echo "[$((SECONDS - t0))s] $*"; }

etcd_down() {
	local p
	for p in "${etcd_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${etcd_pids[@]}"; do wait "$p" 2>/dev/null; done
	etcd_pids=()
}

zap_down() {
	[ -n "$cluster_cfg" ] || return 0
	ZAP_RUN_DIR=$work/run "$root/firmware-config/cluster.sh" down "$cluster_cfg" >/dev/null 2>&1
	cp "$work"/run/n*.log "$out/logs/" 2>/dev/null
	for f in "$out"/logs/n?.log; do [ -f "$f" ] && mv "$f" "${f%.log}-$(basename "$cluster_cfg" .yaml).log"; done
	cluster_cfg=""
}

cleanup() {
	etcd_down
	zap_down
	# log segments and etcd data are large; logs and configs stay
	rm -rf "$work"/fsync "$work"/memory "$work"/etcd "$work"/run "$etcd_tmpfs"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- scenario files

# Read a flat YAML file ("key: value" lines, # comments) into the array S;
# with --quick a key quick_K overrides K.
declare -A S
read_scenario() {
	S=()
	local line k v
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%%#*}
		[[ "$line" =~ ^[[:space:]]*([a-z_0-9]+):[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] || continue
		k=${BASH_REMATCH[1]}
		v=${BASH_REMATCH[2]}
		S[$k]=$v
	done <"$1"
	for k in "${!S[@]}"; do
		if [[ $k == quick_* ]]; then
			[ $quick = 1 ] && S[${k#quick_}]=${S[$k]}
			unset "S[$k]"
		fi
	done
}

# Keys that are the runner's, not zap-bench options.
runner_key() {
	case "$1" in description | kind | sweep_rates | clients_list | read_clients_list | node) return 0 ;; esac
	return 1
}

# ---------------------------------------------------------------- zap cluster

# A private copy of local-3node.yaml; $1 durability (fsync | memory).
zap_config() {
	local dur=$1 cfg=$work/zap-$1.yaml
	sed -e "s#/tmp/zap#$work/$dur#g" -e "s/0x7a01/$cid/" \
		-e "s/127.0.0.1:720\([0-9]\)/127.0.0.1:796\1/" \
		-e "s/127.0.0.1:810\([0-9]\)/127.0.0.1:897\1/" \
		-e "s/127.0.0.1:910\([0-9]\)/127.0.0.1:996\1/" \
		-e "s/^  size: 256M/  size: 2G/" \
		-e "s/^  durability: fsync/  durability: $dur/" \
		"$root/firmware-config/local-3node.yaml" >"$cfg"
	"$zapd" --check-config "$cfg" >/dev/null || {
		echo "run.sh: private config $cfg does not check" >&2
		exit 1
	}
	echo "$cfg"
}

leader=""
cluster_dir=""
zap_up() {
	cluster_cfg=$(zap_config "$1")
	cluster_dir=$work/$1
	mkdir -p "$work/run"
	ZAP_RUN_DIR=$work/run "$root/firmware-config/cluster.sh" up "$cluster_cfg" >"$out/logs/cluster-$1.txt" 2>&1 || {
		cat "$out/logs/cluster-$1.txt" >&2
		tail -n 20 "$work"/run/n*.log >&2
		exit 1
	}
	leader=$(grep -ho 'leader is node [0-9]*' "$work/run/n1.log" | tail -n 1)
	leader=${leader##* }
	# Load the store through the leader; the first commits may meet an election.
	local ok=""
	for _ in $(seq 1 20); do
		if "$bench" --target native --addr "127.0.0.1:796$leader" --cluster-id $cid \
			--populate "$objects" --clients 4 --op load --objects "$objects" \
			--duration 0.1 --warmup 0 >"$out/logs/populate-$1.txt" 2>&1; then
			ok=1
			break
		fi
		sleep 0.5
		leader=$(grep -ho 'leader is node [0-9]*' "$work/run/n1.log" | tail -n 1)
		leader=${leader##* }
	done
	[ -n "$ok" ] || {
		cat "$out/logs/populate-$1.txt" >&2
		exit 1
	}
	log "zap cluster up ($1 durability), leader node $leader, $(grep -h populated "$out/logs/populate-$1.txt")"
}

# The path zap_store_attach() opens for the leader's store: its memfd.
leader_store_path() {
	local pid fd
	pid=$(cat "$work/run/n$leader.pid")
	for fd in /proc/"$pid"/fd/*; do
		case "$(readlink "$fd")" in /memfd:zap-store*)
			echo "$fd"
			return
			;;
		esac
	done
}

# zap-bench with the common options; $1 label, rest options.
run_bench() {
	local label=$1
	shift
	"$bench" --cluster-id $cid --warmup "$warmup" --json "$out/raw/$label.json" \
		--csv "$out/csv/$label.csv" --label "$label" "$@" 2>>"$out/logs/zap-bench.err" |
		tee -a "$out/logs/zap-bench.txt"
}

# $1 target, $2 leader (default) or follower: the node the scenario talks to.
addr_of() {
	local n=$leader i
	if [ "${2:-leader}" = "follower" ]; then
		for i in 1 2 3; do [ "$i" != "$leader" ] && n=$i && break; done
	fi
	case "$1" in
	native) echo "127.0.0.1:796$n" ;;
	native-memif) echo "10.99.1.$n:7100" ;; # the node's client endpoint (local-3node.yaml)
	zeo) echo "127.0.0.1:897$n" ;;
	shm) leader_store_path ;;
	etcd) echo "$etcd_addr" ;;
	esac
}

# $1 scenario file; $2 "ref": run it against ZEO_REF instead (ZEO scenarios
# only, labels zref-NAME instead of s-NAME).
run_scenario() {
	local f=$1 mode=${2:-zap} name args=() k rate pre=s addr
	name=$(basename "$f" .yaml)
	read_scenario "$f"
	[ "${S[kind]:-}" = "compare" ] && return 0
	if [ "$mode" = "ref" ]; then
		[ "${S[target]:-}" = "zeo" ] || return 0
		pre=zref
		addr=$zeo_ref
	else
		addr=$(addr_of "${S[target]}" "${S[node]:-leader}")
	fi
	for k in "${!S[@]}"; do
		runner_key "$k" && continue
		args+=("--${k//_/-}" "${S[$k]}")
	done
	args+=(--addr "$addr" --objects "$objects")
	if [ "${S[target]}" = "native-memif" ]; then
		# the node's role: client memif port, as zap_config placed its socket
		local a
		a=$(addr_of native-memif "${S[node]:-leader}")
		a=${a%:*}
		args+=(--memif "$cluster_dir/memif-client-n${a##*.}.sock")
	fi
	if [ -n "${S[sweep_rates]:-}" ]; then
		for rate in ${S[sweep_rates]//,/ }; do
			run_bench "$pre-$name-r$rate" "${args[@]}" --rate "$rate"
		done
	else
		run_bench "$pre-$name" "${args[@]}"
	fi
}

# ---------------------------------------------------------------- reference ZEO server

# Commit the objects zap's store is loaded with (same oids and size) to the
# ZEO_REF server through ZEO; batches already there are kept.
zeo_ref_load() {
	"$bench" --zeo "$zeo_ref" --populate "$objects" --clients 4 --op load --objects "$objects" \
		--duration 0.1 --warmup 0 >"$out/logs/populate-zeo-ref.txt" 2>&1 || {
		echo "run.sh: ZEO_REF=$zeo_ref: loading the objects failed:" >&2
		cat "$out/logs/populate-zeo-ref.txt" >&2
		exit 1
	}
	log "reference ZEO server $zeo_ref: $(grep -h populated "$out/logs/populate-zeo-ref.txt")"
}

# The comparison's zap side at durability $1.
compare_zap() {
	local dur=$1 c
	read_scenario "$here/scenarios/compare-etcd.yaml"
	for c in ${S[clients_list]//,/ }; do
		run_bench "cmp-zap-$dur-c$c" --target native --addr "127.0.0.1:796$leader" --op commit \
			--value-size "${S[value_size]}" --clients "$c" --duration "${S[duration]}" --objects "$objects"
	done
	for c in ${S[read_clients_list]//,/ }; do
		run_bench "cmpr-zap-$dur-c$c" --target native --addr "127.0.0.1:796$leader" --op load \
			--value-size "${S[value_size]}" --clients "$c" --duration "${S[duration]}" --objects "$objects"
	done
}

# ---------------------------------------------------------------- etcd

etcd_addr=""
etcd_up() {
	local mode=$1 data=$2 i init="" p
	mkdir -p "$data"
	for i in 1 2 3; do init="$init${init:+,}e$i=http://127.0.0.1:2738$i"; done
	for i in 1 2 3; do
		etcd --name "e$i" --data-dir "$data/e$i" \
			--listen-client-urls "http://127.0.0.1:2737$i" --advertise-client-urls "http://127.0.0.1:2737$i" \
			--listen-peer-urls "http://127.0.0.1:2738$i" --initial-advertise-peer-urls "http://127.0.0.1:2738$i" \
			--initial-cluster "$init" --initial-cluster-token "zap-bench-$$-$mode" --initial-cluster-state new \
			>"$out/logs/etcd-$mode-e$i.log" 2>&1 &
		etcd_pids+=($!)
	done
	for _ in $(seq 1 150); do
		p=0
		for i in 1 2 3; do
			curl -sf -m 1 "http://127.0.0.1:2737$i/health" 2>/dev/null | grep -q '"health":"true"' && p=$((p + 1))
		done
		[ $p = 3 ] && break
		sleep 0.2
	done
	[ $p = 3 ] || {
		echo "run.sh: etcd cluster ($mode) not healthy" >&2
		tail -n 5 "$out"/logs/etcd-"$mode"-e*.log >&2
		exit 1
	}
	# Send to the leader, as zap's clients do.
	etcd_addr=$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:27371,127.0.0.1:27372,127.0.0.1:27373 \
		endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    h = e["Status"]["header"]
    if h["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"].replace("http://", ""))
        break')
	[ -n "$etcd_addr" ] || etcd_addr=127.0.0.1:27371
	local eobj=$((objects < 10000 ? objects : 10000))
	"$bench" --target etcd --addr "$etcd_addr" --populate "$eobj" --clients 4 --op load \
		--objects "$eobj" --duration 0.1 --warmup 0 >"$out/logs/populate-etcd-$mode.txt" 2>&1 || {
		cat "$out/logs/populate-etcd-$mode.txt" >&2
		exit 1
	}
	log "etcd cluster up ($mode), leader $etcd_addr, $(grep -h populated "$out/logs/populate-etcd-$mode.txt")"
}

compare_etcd() {
	local mode=$1 c eobj=$((objects < 10000 ? objects : 10000))
	read_scenario "$here/scenarios/compare-etcd.yaml"
	for c in ${S[clients_list]//,/ }; do
		run_bench "cmp-etcd-$mode-c$c" --target etcd --addr "$etcd_addr" --op commit \
			--value-size "${S[value_size]}" --clients "$c" --duration "${S[duration]}" --objects "$eobj"
	done
	for c in ${S[read_clients_list]//,/ }; do
		run_bench "cmpr-etcd-$mode-c$c" --target etcd --addr "$etcd_addr" --op load \
			--value-size "${S[value_size]}" --clients "$c" --duration "${S[duration]}" --objects "$eobj"
	done
}

# ---------------------------------------------------------------- the run

log "results in $out ($([ $quick = 1 ] && echo quick || echo full), $objects objects)"
{
	echo "quick=$quick"
	echo "objects=$objects"
	echo "git=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo +dirty)"
	echo "build=$bdir"
	echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "command=$([ $quick = 1 ] && echo 'make bench-quick' || echo 'make bench')"
	echo "etcd=$(etcd --version 2>/dev/null | head -n 1)"
	echo "zeo_ref=$zeo_ref"
} >"$out/run.txt"

[ -n "$zeo_ref" ] && zeo_ref_load

# Baselines: the disk floor on the filesystem of the logs, the memif floor.
mkdir -p "$work/fsync"
run_bench base-fsync --target fsync --addr "$work/fsync" --value-size 100 --duration $([ $quick = 1 ] && echo 2 || echo 10)
# The same disk's sequential write rate, the floor of the large transactions
# and blobs (22, 23): 100 MiB in 1 MiB writes, then one fdatasync, a few times.
run_bench base-seqwrite --target fsync --addr "$work/fsync" --op append --value-size 1048576 \
	--objs 100 --iterations $([ $quick = 1 ] && echo 3 || echo 5) --warmup 0 --duration 60
count=$([ $quick = 1 ] && echo 5000 || echo 20000)
for pol in adaptive busy; do
	"$memif" pair --policy $pol --spin-us 20 --yield-us 100 --sleep-us 500 --count "$count" \
		>"$out/raw/base-memif-$pol.txt" 2>"$out/logs/memif-$pol.err"
	log "$(cat "$out/raw/base-memif-$pol.txt")"
done

zap_up fsync
for f in $scenarios; do run_scenario "$f"; done
compare_zap fsync
zap_down

# The ZEO scenarios again against the reference server, the zap cluster stopped.
if [ -n "$zeo_ref" ]; then
	log "ZEO scenarios against the reference server $zeo_ref"
	for f in $scenarios; do run_scenario "$f" ref; done
fi

zap_up memory
compare_zap memory
read_scenario "$here/scenarios/11-sweep-commit.yaml"
for rate in ${S[sweep_rates]//,/ }; do
	run_bench "sm-11-sweep-commit-r$rate" --target native --addr "127.0.0.1:796$leader" --op commit \
		--clients "${S[clients]}" --duration "${S[duration]}" --rate "$rate" --objects "$objects"
done
zap_down

if command -v etcd >/dev/null; then
	etcd_up fsync "$work/etcd"
	compare_etcd fsync
	etcd_down
	etcd_up nofsync "$etcd_tmpfs"
	compare_etcd nofsync
	etcd_down
else
	log "etcd not installed (firmware-config/install-deps.sh --bench): no etcd baseline"
fi

echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$out/run.txt"
echo "seconds=$((SECONDS - t0))" >>"$out/run.txt"
python3 "$here/report.py" "$out" || exit 1
log "done: $out/report.md"
