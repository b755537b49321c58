#!/usr/bin/env bash
# Builds and tests under the sanitizers (docs/fuzzing.md, "Sanitizers"):
#  asan: ./build-asan, Debug with -DCORTEX_SANITIZE=ON (ASan + UBSan): the unit tests (ctest -L
#        unit) and an end-to-end subset that serves real APIs through the instrumented binary:
#        realtime serving, error answers, replicas and workers that die, batch jobs, and models
#        (the replica's syncer thread, live reloads, caching), and the threaded gateway over Unix sockets
#        (CORTEX_E2E_TESTS overrides the list). A sanitizer report from any process of those
#        clusters (operator, gateway, replica fronts, CLI) fails the step,
#        even if the test itself passed.
#  tsan: ./build-tsan, -DCORTEX_TSAN=ON (ThreadSanitizer): the GoogleTest unit tests.
# CORTEX_SANITIZE_STEPS picks the steps ("asan tsan" by default); CORTEX_BUILD_JOBS the build's -j.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${CORTEX_SANITIZE_STEPS:-asan tsan}"
JOBS="${CORTEX_BUILD_JOBS:-$(nproc)}"
DEFAULT_E2E="tests/e2e/test_realtime.py tests/e2e/test_errors.py tests/e2e/test_resilience.py"
DEFAULT_E2E+=" tests/e2e/test_batch.py tests/e2e/test_models.py tests/e2e/test_data_plane.py"
read -r -a E2E_TESTS <<<"${CORTEX_E2E_TESTS:-$DEFAULT_E2E}"

# UBSan stops at the first report instead of printing and going on.
UBSAN_BASE="halt_on_error=1:print_stacktrace=1"
# LeakSanitizer stays on: the unit tests and the clusters' processes that exit (the CLI, and
# whatever ends normally) must not leak.
ASAN_BASE="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"

step_asan() {
  echo "== asan: build (build-asan, Debug, CORTEX_SANITIZE=ON)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCORTEX_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$JOBS"
  echo "== asan: unit tests"
  (cd build-asan && ASAN_OPTIONS="$ASAN_BASE" UBSAN_OPTIONS="$UBSAN_BASE" \
    ctest --output-on-failure -L unit -j 2)

  echo "== asan: e2e ${E2E_TESTS[*]}"
  # The clusters' processes log to files of their own: their sanitizer reports go to
  # $reports/<tool>.<pid>, checked after the run.
  local reports
  reports="$(mktemp -d)"
  local rc=0
  CORTEX_BIN="$PWD/build-asan/src/apps/cortex" \
    ASAN_OPTIONS="$ASAN_BASE:log_path=$reports/asan" \
    UBSAN_OPTIONS="$UBSAN_BASE:log_path=$reports/ubsan" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider "${E2E_TESTS[@]}" || rc=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "sanitizer reports from the e2e clusters:"
    for f in "$reports"/*; do
      echo "--- $f"
      head -n 60 "$f"
    done
    rc=1
  fi
  rm -rf "$reports"
  return "$rc"
}

step_tsan() {
  echo "== tsan: build (build-tsan, CORTEX_TSAN=ON)"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORTEX_TSAN=ON >/dev/null
  cmake --build build-tsan -j "$JOBS"
  echo "== tsan: unit tests"
  # The pytest entries of the unit label run no C++.
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    ctest --output-on-failure -L unit -E '^(python_runtime|s3_sigv4_botocore)$' -j 2)
}

for step in $STEPS; do
  case "$step" in
    asan) step_asan ;;
    tsan) step_tsan ;;
    *) echo "unknown sanitize step $step" >&2; exit 2 ;;
  esac
done
echo "sanitizers passed: $STEPS"
