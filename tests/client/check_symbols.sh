#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# client-symbols: the functions libzapclient.so exports are exactly the ones
# listed in tests/client/zapclient.symbols. An export the list does not name
# (a new ZAP_API, a lost -fvisibility=hidden) fails, and so does a listed name
# the library no longer exports (a dropped ZAP_API, a renamed function).
#
# usage: check_symbols.sh LIBZAPCLIENT_SO SYMBOLS_LIST
set -eu

lib=$1
list=$2
nm=${NM:-nm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sort -u >"$tmp/exported"
grep -v -e '^#' -e '^[[:space:]]*$' "$list" | sort -u >"$tmp/listed"

comm -23 "$tmp/exported" "$tmp/listed" >"$tmp/unlisted"
comm -13 "$tmp/exported" "$tmp/listed" >"$tmp/missing"

rc=0
if [ -s "$tmp/unlisted" ]; then
	echo "exported by $lib but not in $list (mark it ZAP_API on purpose and list it, or hide it):"
	sed 's/^/  /' "$tmp/unlisted"
	rc=1
fi
if [ -s "$tmp/missing" ]; then
	echo "listed in $list but not exported by $lib:"
	sed 's/^/  /' "$tmp/missing"
	rc=1
fi
if [ "$rc" -eq 0 ]; then
	echo "libzapclient.so exports the $(wc -l <"$tmp/listed") listed symbols, no others"
fi
exit "$rc"
