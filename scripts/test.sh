#!/usr/bin/env bash
# Installs, builds and runs every test: unit tests (GoogleTest, pytest for the Python runtime)
# and the end-to-end suite (label e2e) that drives the real binaries; then the sanitizer builds
# (scripts/sanitize.sh: ASan+UBSan unit tests and an e2e subset, TSan unit tests) and a short
# run of every fuzz target (scripts/fuzz.sh, CORTEX_FUZZ_SECONDS each, 20 by default here).
# CORTEX_TEST_SANITIZERS=0 stops after the e2e suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure -L unit -j 2
ctest --output-on-failure -L e2e
cd ..
if [ "${CORTEX_TEST_SANITIZERS:-1}" != "0" ]; then
  ./scripts/sanitize.sh
  CORTEX_FUZZ_SECONDS="${CORTEX_FUZZ_SECONDS:-20}" ./scripts/fuzz.sh
fi
