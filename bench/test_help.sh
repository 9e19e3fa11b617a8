#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every bench binary given as an argument answers --help with its usage on
# stdout and exit status 0, and refuses an unknown option on stderr with a
# non-zero status (meson test bench-help).
set -u
fail=0
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
for bin in "$@"; do
	name=$(basename "$bin")
	timeout 10 "$bin" --help >"$out" 2>"$err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $name --help: exit $rc"; cat "$err"; fail=1
	elif [ ! -s "$out" ]; then
		echo "FAIL $name --help: nothing on stdout"; fail=1
	elif ! grep -q -e '--help' "$out"; then
		echo "FAIL $name --help: the usage does not list --help"; fail=1
	else
		echo "ok   $name --help ($(wc -l <"$out") lines)"
	fi
	timeout 10 "$bin" --no-such-option >"$out" 2>"$err"
	rc=$?
	if [ "$rc" -eq 0 ] || [ ! -s "$err" ]; then
		echo "FAIL $name --no-such-option: exit $rc, $(wc -c <"$err") bytes on stderr"; fail=1
	else
		echo "ok   $name --no-such-option: exit $rc"
	fi
done
exit $fail
