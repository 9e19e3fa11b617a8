#!/usr/bin/env bash
# `zapd --check-ports` as a process: EAL from the YAML, ports up, one line per
# port, clean shutdown. Runs on net_null/net_ring/memif vdevs with --no-huge
# (no NIC, no hugepages needed). Each config gets a random cluster id, hence
# its own EAL file prefix; the prefix folders and memif sockets are removed
# on exit. Usage: test_check_ports.sh ZAPD SOURCE_ROOT
set -u
zapd=$1
src=$2
tmp=$(mktemp -d)
if [ "$(id -u)" -eq 0 ]; then rundir=/var/run/dpdk; else rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk; fi
prefixes=()
cleanup() {
	for p in "${prefixes[@]}"; do rm -rf "${rundir:?}/$p"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export ZAPD_EAL_LOG_LEVEL=${ZAPD_EAL_LOG_LEVEL:-notice}
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
bad() { failed=$((failed + 1)); echo "not ok - $1"; }

# mkconfig NAME PORT... : dev-single.yaml with a fresh cluster id and these vdev ports.
mkconfig() {
	local name=$1
	shift
	local cid
	cid=$(printf '%x' $(((RANDOM << 15 | RANDOM) + 4096)))
	prefixes+=("zap-$cid-n1")
	python3 - "$src/firmware-config/dev-single.yaml" "$tmp/$name.yaml" "$cid" "$@" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
out, cid, ports = sys.argv[2], sys.argv[3], sys.argv[4:]
text = re.sub(r"^  id: 1 .*$", "  id: 0x%s" % cid, text, count=1, flags=re.M)
start = text.index("    ports:\n")
end = text.index("\n# One lcore")
body = "    ports:\n" + "".join('      - {role: replication, vdev: "%s"}\n' % p for p in ports)
open(out, "w").write(text[:start] + body + text[end:])
PY
}

run() { # name, want exit, config
	"$zapd" --config "$tmp/$3.yaml" --check-ports >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -eq "$2" ]; then ok "$1"; else
		bad "$1 (exit $got, want $2)"
		cat "$tmp/out" "$tmp/err"
	fi
}

# 1. null + ring, 20 times: every start and shutdown is clean.
mkconfig vdevs net_null0 net_ring0 net_null1
fails=0
for i in $(seq 1 20); do
	"$zapd" --config "$tmp/vdevs.yaml" --check-ports >"$tmp/out.$i" 2>"$tmp/err.$i"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fails=$((fails + 1))
		echo "# run $i: exit $rc"
		cat "$tmp/err.$i"
	fi
done
if [ "$fails" -eq 0 ]; then ok "20 check-ports runs on null/ring vdevs exit 0"; else bad "$fails of 20 runs failed"; fi
for want in "net_null0: kind vdev, role replication" "net_ring0: kind vdev" "net_null1:"; do
	if grep -q "$want.*link up" "$tmp/out.20"; then ok "prints: $want ... link up"; else
		bad "no line '$want ... link up'"
		cat "$tmp/out.20"
	fi
done
if [ "$(grep -c '^port ' "$tmp/out.20")" -eq 3 ]; then ok "one line per port"; else bad "line count"; fi

# 2. Ports that cannot come up: exit 1, one line naming the port.
mkconfig unknown net_null0 net_nosuchdriver0
run "unknown vdev driver fails" 1 unknown
if grep -q "^zapd: port net_nosuchdriver0: " "$tmp/err"; then ok "unknown driver named"; else bad "unknown driver not named: $(cat "$tmp/err")"; fi

mkconfig noprobe net_null0 "net_memif7,role=bogus"
run "vdev that fails to probe fails" 1 noprobe
if grep -q "^zapd: port net_memif7: not probed" "$tmp/err"; then ok "unprobed vdev named"; else bad "unprobed vdev not named: $(cat "$tmp/err")"; fi

mkconfig lonely "net_memif0,role=client,id=0,socket=$tmp/none.sock,socket-abstract=no"
run "memif client without a server fails after its retries" 1 lonely
if grep -q "^zapd: port net_memif0: rte_eth_dev_start" "$tmp/err"; then ok "serverless client named"; else bad "serverless client: $(cat "$tmp/err")"; fi

# 3. A memif server and its client, two processes, three times.
mkconfig server "net_memif0,role=server,id=0,socket=$tmp/m.sock,socket-abstract=no"
mkconfig client "net_memif0,role=client,id=0,socket=$tmp/m.sock,socket-abstract=no"
for i in 1 2 3; do
	rm -f "$tmp/m.sock"
	"$zapd" --config "$tmp/server.yaml" --check-ports >"$tmp/srv.out" 2>"$tmp/srv.err" &
	srv=$!
	for _ in $(seq 1 100); do [ -S "$tmp/m.sock" ] && break; sleep 0.02; done
	"$zapd" --config "$tmp/client.yaml" --check-ports >"$tmp/cli.out" 2>"$tmp/cli.err"
	crc=$?
	wait "$srv"
	src_rc=$?
	if [ "$crc" -eq 0 ] && [ "$src_rc" -eq 0 ] && grep -q "net_memif0:.*link up" "$tmp/srv.out" &&
		grep -q "net_memif0:.*link up" "$tmp/cli.out"; then
		ok "memif pair $i: both link up, both exit 0"
	else
		bad "memif pair $i (server $src_rc, client $crc)"
		cat "$tmp/srv.out" "$tmp/srv.err" "$tmp/cli.out" "$tmp/cli.err"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
