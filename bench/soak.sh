#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zap soak (make soak, docs/benchmarks.md "Soak"): a private 3-node cluster
# on local-3node.yaml's settings (its checkpoint triggers included) takes a
# stream of one-object commits that overwrite a fixed working set, so
# history grows and live data does not; a pack every few intervals. After
# every interval it records, per node, the RSS, the bytes of log segments
# and of the checkpoint file, and the interval's commit rate, p50 and p99.
# What it shows: whether memory, disk and latency stay flat once warm. At
# the end node 2 is restarted and timed until it serves again.
#
# Output in OUT (default bench/results/soak-<UTC timestamp>): soak.csv (one
# line per interval), soak.png (gnuplot, when installed), intervals/*.json
# (zap-bench's figures), the node logs, summary.txt.
#
# Bounded: SOAK_MINUTES (default 30; 1..1440) of load, each interval a
# zap-bench run bounded by its --duration; a watchdog ends the script 5 min
# after its budget. Knobs (environment): SOAK_INTERVAL seconds (default 20),
# SOAK_OBJECTS working set (default 10000), SOAK_VALUE bytes per object
# (default 1000), SOAK_CLIENTS (default 4), SOAK_PACK_EVERY intervals
# (default 6), BUILD (default build).
#
# usage: bench/soak.sh [OUT]
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build=$src/$build ;; esac
minutes=${SOAK_MINUTES:-30}
interval=${SOAK_INTERVAL:-20}
objects=${SOAK_OBJECTS:-10000}
value=${SOAK_VALUE:-1000}
clients=${SOAK_CLIENTS:-4}
pack_every=${SOAK_PACK_EVERY:-6}
out=${1:-$src/bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
for v in minutes interval objects value clients pack_every; do
	case "${!v}" in '' | *[!0-9]*) echo "soak: $v=${!v}: not a number" >&2; exit 2 ;; esac
done
[ "$minutes" -ge 1 ] && [ "$minutes" -le 1440 ] || { echo "soak: SOAK_MINUTES 1..1440" >&2; exit 2; }
[ "$interval" -ge 2 ] || { echo "soak: SOAK_INTERVAL at least 2" >&2; exit 2; }
zapd=$build/dataplane/zapd
bench=$build/bench/zap-bench
cli=$build/dataplane/zap
for b in "$zapd" "$bench" "$cli"; do
	[ -x "$b" ] || { echo "soak: $b missing (ninja -C $build)" >&2; exit 1; }
done

mkdir -p "$out/intervals"
tmp=$out/cluster
rm -rf "$tmp"
mkdir -p "$tmp"
cfg=$tmp/soak.yaml
cid=0x7a2e
sed -e "s#/tmp/zap#$tmp#g" -e "s/0x7a01/$cid/" -e "s/127.0.0.1:720\([0-9]\)/127.0.0.1:742\1/" \
	-e "s/127.0.0.1:810\([0-9]\)/127.0.0.1:842\1/" "$src/firmware-config/local-3node.yaml" >"$cfg"
"$zapd" --check-config "$cfg" >/dev/null || { echo "soak: config does not check" >&2; exit 1; }
export ZAPD=$zapd ZAP_RUN_DIR=$tmp/run ZAP_UP_TIMEOUT=30
cluster=("$src/firmware-config/cluster.sh")

watchdog=""
cleanup() {
	[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
	"${cluster[@]}" down "$cfg" >/dev/null 2>&1
	cp "$ZAP_RUN_DIR"/n*.log "$out/" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
(sleep $((minutes * 60 + 300)) && kill -TERM $$ 2>/dev/null) &
watchdog=$!

"${cluster[@]}" up "$cfg" >/dev/null || { echo "soak: cluster up failed" >&2; exit 1; }
addr=127.0.0.1:7421,127.0.0.1:7422,127.0.0.1:7423
logdir() { sed -n "s/^    log_dir: //p" "$cfg" | sed -n "${1}p" | sed 's/ *#.*//'; }
rss_mb() {
	local pid
	pid=$(cat "$ZAP_RUN_DIR/n$1.pid" 2>/dev/null) || { echo 0; return; }
	awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo 0
}
log_mb() {
	local d
	d=$(logdir "$1")
	find "$d" -maxdepth 1 -name '*.zlog' -printf '%s\n' 2>/dev/null |
		awk '{ s += $1 } END { printf "%.1f", s / 1048576 }'
}
ckpt_mb() {
	local f
	f="$(logdir "$1")/checkpoint.zsnap"
	[ -f "$f" ] && awk -v s="$(stat -c %s "$f")" 'BEGIN { printf "%.1f", s / 1048576 }' || echo 0
}
jfield() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

csv=$out/soak.csv
echo "t_s,ops_s,p50_us,p99_us,errors,rss1_mb,rss2_mb,rss3_mb,log1_mb,log2_mb,log3_mb,ckpt1_mb,ckpt2_mb,ckpt3_mb,pack" >"$csv"
echo "soak: $minutes min, intervals of $interval s, $objects objects of $value bytes, $clients clients, a pack every $pack_every intervals; out $out"
t0=$SECONDS
i=0
while [ $((SECONDS - t0)) -lt $((minutes * 60)) ]; do
	i=$((i + 1))
	j=$out/intervals/$(printf %05d $i).json
	"$bench" --target native --addr "$addr" --cluster-id "$cid" --op overwrite \
		--objects "$objects" --value-size "$value" --clients "$clients" \
		--duration "$interval" --warmup 0 --timeout-ms 2000 --label "soak-$i" \
		--json "$j" >/dev/null 2>"$out/intervals/$(printf %05d $i).err" ||
		echo "soak: interval $i: zap-bench failed (see intervals/)" >&2
	packed=0
	if [ $((i % pack_every)) -eq 0 ]; then
		last=$("$cli" --config "$cfg" --node 1 last-tid --sync 2>/dev/null)
		[ -n "$last" ] && "$cli" --config "$cfg" --node 1 pack "$last" >/dev/null 2>&1 && packed=1
	fi
	if [ -f "$j" ]; then
		ops=$(jfield "$j" "'%.0f' % d['throughput_ops_s']")
		p50=$(jfield "$j" "'%.0f' % (d['write_latency_ns']['p50'] / 1000)")
		p99=$(jfield "$j" "'%.0f' % (d['write_latency_ns']['p99'] / 1000)")
		errs=$(jfield "$j" "d['errors']")
	else
		ops=0 p50=0 p99=0 errs=-1
	fi
	line="$((SECONDS - t0)),$ops,$p50,$p99,$errs"
	for n in 1 2 3; do line="$line,$(rss_mb $n)"; done
	for n in 1 2 3; do line="$line,$(log_mb $n)"; done
	for n in 1 2 3; do line="$line,$(ckpt_mb $n)"; done
	echo "$line,$packed" >>"$csv"
	echo "  $line,$packed"
done
# Restart to serving: node 2 stopped and started again (its checkpoint file,
# then its log tail), timed until it answers a read barrier at node 1's last tid.
restart_s=""
want=$("$cli" --config "$cfg" --node 1 last-tid --sync 2>/dev/null)
if [ -n "$want" ] && "${cluster[@]}" stop 2 "$cfg" >/dev/null 2>&1; then
	r0=$(date +%s.%N)
	"${cluster[@]}" start 2 "$cfg" >/dev/null 2>&1
	for _ in $(seq 1 600); do
		got=$("$cli" --config "$cfg" --node 2 --timeout 200 last-tid --sync 2>/dev/null)
		[ -n "$got" ] && [ $((got)) -ge $((want)) ] && break
		sleep 0.05
	done
	r1=$(date +%s.%N)
	restart_s=$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", b - a }')
	echo "soak: node 2 restarted and serving at last tid $want in $restart_s s"
	grep -h "loaded checkpoint\|records replayed" "$ZAP_RUN_DIR/n2.log" | tail -n 2
fi
"${cluster[@]}" down "$cfg" >/dev/null 2>&1

# Summary: the first interval after the warm-up (a fifth of the run) beside the last.
python3 - "$csv" "$out/summary.txt" "$restart_s" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit("soak: no interval recorded")
w = rows[max(0, len(rows) // 5)]
z = rows[-1]
keys = ["ops_s", "p50_us", "p99_us", "rss1_mb", "rss2_mb", "rss3_mb", "log1_mb", "log2_mb",
        "log3_mb", "ckpt1_mb", "ckpt2_mb", "ckpt3_mb"]
peak = {k: max(float(r[k]) for r in rows[len(rows) // 5:]) for k in keys}
lines = ["soak: %d intervals over %s s; commits %d; errors %d" % (
    len(rows), z["t_s"], sum(float(r["ops_s"]) for r in rows) * (float(z["t_s"]) / len(rows)),
    sum(max(0, int(r["errors"])) for r in rows))]
lines.append("%-10s %12s %12s %12s" % ("figure", "after warm-up", "at the end", "peak after"))
for k in keys:
    lines.append("%-10s %12s %12s %12.1f" % (k, w[k], z[k], peak[k]))
if sys.argv[3]:
    lines.append("restart of node 2 to serving: %s s" % sys.argv[3])
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF

if command -v gnuplot >/dev/null; then
	gnuplot <<EOF || echo "soak: gnuplot failed" >&2
set terminal pngcairo size 1000,900 noenhanced font ",10"
set output "$out/soak.png"
set datafile separator ","
set key autotitle columnhead outside right
set multiplot layout 3,1 title "zap soak: $objects objects of $value B overwritten by $clients clients, pack every $pack_every x $interval s"
set xlabel "seconds"
set ylabel "RSS (MiB)"
plot "$csv" using 1:6 with lines, "" using 1:7 with lines, "" using 1:8 with lines
set ylabel "disk (MiB)"
plot "$csv" using 1:9 with lines, "" using 1:10 with lines, "" using 1:11 with lines, \
     "" using 1:12 with lines, "" using 1:13 with lines, "" using 1:14 with lines
set ylabel "commit latency (us)"
plot "$csv" using 1:3 with lines, "" using 1:4 with lines
unset multiplot
EOF
	[ -f "$out/soak.png" ] && echo "soak: plot $out/soak.png"
else
	echo "soak: gnuplot not installed (install-deps.sh --bench): no plot"
fi
