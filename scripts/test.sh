#!/usr/bin/env bash
# Installs, builds and runs every test: unit tests (GoogleTest, pytest for the Python runtime)
# and the end-to-end suite (label e2e) that drives the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure -L unit -j 2
ctest --output-on-failure -L e2e
