#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need.
# Idempotent; run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config ninja-build
  libboost-dev libboost-system-dev
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libsqlite3-dev libarchive-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
  python3 python3-pytest python3-requests
  python3-numpy python3-sklearn python3-pil
  curl procps
  prometheus  # tests/e2e/test_prometheus.py scrapes the cluster with it
)
# Benchmark peers (the Cortex v0.24 serving stack rebuilt from Debian packages) and plotting
# (bench/autoscale_bench.py draws its timeline with matplotlib).
if [ "${CORTEX_INSTALL_BENCH:-0}" = "1" ]; then
  PACKAGES+=(wrk nginx-light python3-fastapi python3-uvicorn python3-uvloop python3-httptools
             python3-matplotlib)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
