#!/usr/bin/env bash
# Builds the control plane with clang's thread-safety analysis (-Wthread-safety as errors) and
# runs its tests: every mutex-guarded field is annotated ABSL_GUARDED_BY and checked here.
# The Beast-based servers are left out (they build with GCC; their state is single-threaded).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=clang++ cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-clang -j "$(nproc)" --target control_plane_test local_backend_test \
  operator_pure_test replica_core_test sqlite_state_store_test models_test
for t in operator/control_plane_test backends/local_backend_test operator/operator_pure_test \
  replica/replica_core_test store/sqlite_state_store_test models/models_test; do
  "build-clang/src/$t" --gtest_brief=1
done
