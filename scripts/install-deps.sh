#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need.
# Idempotent; run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config ninja-build
  libboost-dev libboost-system-dev
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libsqlite3-dev libarchive-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer targets (clang's ASan/UBSan runtimes)
  python3 python3-pytest python3-requests
  python3-numpy python3-sklearn python3-pil
  curl procps
  prometheus  # tests/e2e/test_prometheus.py scrapes the cluster with it
  python3-botocore python3-boto3  # tests/s3: the reference SigV4 signer, and the S3 test client
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

# The S3 test peer for tests/s3/test_s3_functional.py: s3rver from npm, into the (git-ignored)
# build tree. It needs node and npm (node 20 with its own npm; Debian's npm package is not
# wanted); without them the functional S3 tests skip.
S3RVER_VERSION=3.7.1
S3RVER_DIR="${CORTEX_S3RVER_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/_deps/s3rver}"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if ! grep -qs "\"version\": \"${S3RVER_VERSION}\"" "$S3RVER_DIR/node_modules/s3rver/package.json"; then
    mkdir -p "$S3RVER_DIR"
    npm install --prefix "$S3RVER_DIR" "s3rver@${S3RVER_VERSION}" --no-audit --no-fund \
      --loglevel=error
  fi
else
  echo "install-deps: node/npm not found; skipping s3rver (tests/s3 functional tests skip)" >&2
fi
