#!/usr/bin/env bash
# zapd's command line: --help and --version, --check-config on good and bad
# files, usage errors, and the single-node demo end to end (including
# recovery from the log).
# Usage: test_zapd.sh ZAPD SOURCE_ROOT
set -u
zapd=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
bad() { failed=$((failed + 1)); echo "not ok - $1"; }

expect_exit() { # name, code, command...
	local name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -eq "$want" ]; then ok "$name"; else bad "$name (exit $got, want $want)"; cat "$tmp/err"; fi
}

for f in dev-single local-3node rack-3node rack-5node; do
	expect_exit "check-config $f.yaml" 0 "$zapd" --check-config "$src/firmware-config/$f.yaml"
done

# An even-sized cluster fails with FILE:LINE.
python3 - "$src/firmware-config/local-3node.yaml" "$tmp/even.yaml" <<'PY'
import sys, re
text = open(sys.argv[1]).read()
# drop the third node: from its "- id: 3" line to the next top-level key
start = text.index("  - id: 3")
end = re.search(r"^\S", text[start:], re.M).start() + start
open(sys.argv[2], "w").write(text[:start] + text[end:])
PY
expect_exit "check-config rejects a 2-node cluster" 1 "$zapd" --check-config "$tmp/even.yaml"
if grep -Eq "^$tmp/even.yaml:[0-9]+: " "$tmp/err"; then ok "error is FILE:LINE: message"; else bad "error format: $(cat "$tmp/err")"; fi

printf 'cluster:\n  id: 1\n  bogus: 2\n' >"$tmp/unknown.yaml"
expect_exit "check-config rejects an unknown key" 1 "$zapd" --check-config "$tmp/unknown.yaml"
if grep -q "unknown.yaml:3: " "$tmp/err"; then ok "unknown key reported at its line"; else bad "unknown key line: $(cat "$tmp/err")"; fi

# The ZEO gateway and the control plane are no lcore roles: refused at their line.
sed 's/roles: \[io, paxos, log, apply\]/roles: [io, paxos, log, apply, gateway]/' \
	"$src/firmware-config/dev-single.yaml" >"$tmp/gateway.yaml"
expect_exit "check-config rejects lcore role gateway" 1 "$zapd" --check-config "$tmp/gateway.yaml"
if grep -Eq "^$tmp/gateway.yaml:[0-9]+: .*'gateway' is not one of: io, paxos, log, apply" "$tmp/err"; then
	ok "role gateway reported at its line with the roles that exist"
else
	bad "role gateway message: $(cat "$tmp/err")"
fi

expect_exit "missing file" 1 "$zapd" --check-config "$tmp/nope.yaml"
expect_exit "no arguments is a usage error" 2 "$zapd"
expect_exit "unknown option is a usage error" 2 "$zapd" --frobnicate
expect_exit "bad node id is a usage error" 2 "$zapd" --config "$src/firmware-config/dev-single.yaml" --node x --demo
expect_exit "stray argument is a usage error" 2 "$zapd" --check-config a b

# --help: usage on stdout, exit 0, a line for every option of zapd.c's table.
expect_exit "--help exits 0" 0 "$zapd" --help
if [ -s "$tmp/out" ]; then ok "--help prints on stdout"; else bad "--help stdout is empty"; fi
options=$(sed -n 's/^[[:space:]]*{"\([a-z-]*\)", [a-z_]*_argument,.*/\1/p' "$src/dataplane/node/zapd.c")
if [ -n "$options" ]; then ok "options read from zapd.c"; else bad "no option found in zapd.c"; fi
for o in $options; do
	if grep -Eq "^  --$o( |$)" "$tmp/out"; then ok "--help has a line for --$o"; else bad "--help lacks a line for --$o"; fi
done

# --version: "zapd VERSION" on stdout (the meson project version), exit 0.
version=$(sed -n "s/^[[:space:]]*version : '\([^']*\)',.*/\1/p" "$src/meson.build" | head -n 1)
expect_exit "--version exits 0" 0 "$zapd" --version
if [ -s "$tmp/out" ]; then ok "--version prints on stdout"; else bad "--version stdout is empty"; fi
if [ "$(cat "$tmp/out")" = "zapd $version" ]; then ok "--version prints zapd $version"; else bad "--version: '$(cat "$tmp/out")', want 'zapd $version'"; fi

expect_exit "demo runs" 0 "$zapd" --config "$src/firmware-config/dev-single.yaml" --demo
for want in "committed, tid" "ConflictError(oid 1" "ReadConflictError(oid 2" "EXPIRED" \
	"replayed from the session table" "identical to before the restart" "zap demo: done"; do
	if grep -qF "$want" "$tmp/out"; then ok "demo prints: $want"; else bad "demo lacks: $want"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
