#!/usr/bin/env bash
# Configures and builds everything into ./build and links `cortex` into /usr/local/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_TYPE="${CORTEX_BUILD_TYPE:-RelWithDebInfo}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CORTEX_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"
if [ -w /usr/local/bin ]; then
  ln -sf "$PWD/build/src/apps/cortex" /usr/local/bin/cortex
fi
