#!/usr/bin/env bash
# Install, with apt-get, the Debian 12 packages zap builds and runs with.
# Does nothing when everything is already there.
set -euo pipefail

PKGS=(
	build-essential g++ pkg-config meson ninja-build python3
	dpdk libdpdk-dev
	libjemalloc-dev
	libcyaml-dev libyaml-dev
	libsodium-dev
	libgtest-dev
	iproute2
)

# `install-deps.sh --fuzz`: also clang and its libFuzzer runtime (make fuzz).
if [ "${1:-}" = "--fuzz" ]; then
	PKGS+=(clang libclang-rt-14-dev)
fi
# `install-deps.sh --bench`: also etcd (the baseline) and gnuplot (the plots) for make bench.
if [ "${1:-}" = "--bench" ]; then
	PKGS+=(etcd-server etcd-client gnuplot-nox)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
