#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ into ./build-fuzz (clang, -DCORTEX_FUZZ=ON: ASan, UBSan
# and coverage) and runs each one: first its regression inputs (fuzz/regressions/<target>/),
# then CORTEX_FUZZ_SECONDS seconds (default 30; 0 runs the seed corpus once) of fuzzing on a copy
# of its seed corpus (fuzz/corpus/<target>/; the repository's corpus is never written). Fails if
# any target crashes, leaks, times out or runs out of memory; the input that did it is kept in
# build-fuzz/fuzz-artifacts/<target>/ and the log in build-fuzz/fuzz-logs/<target>.log.
# CORTEX_FUZZ_TARGETS restricts the run to some targets. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${CORTEX_FUZZ_SECONDS:-30}"
ALL_TARGETS="config_fuzzer job_submission_fuzzer frame_codec_fuzzer http_request_fuzzer bundle_fuzzer"
TARGETS="${CORTEX_FUZZ_TARGETS:-$ALL_TARGETS}"

# The largest input each target is given: room for several API configs, a submission with a
# few hundred items, a frame, a request head with a body, a bundle of a few small files.
max_len() {
  case "$1" in
    config_fuzzer) echo 8192 ;;
    job_submission_fuzzer) echo 8192 ;;
    frame_codec_fuzzer) echo 4096 ;;
    http_request_fuzzer) echo 16384 ;;
    bundle_fuzzer) echo 65536 ;;
    *) echo "unknown fuzz target $1" >&2; exit 2 ;;
  esac
}

cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCORTEX_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" >/dev/null
# shellcheck disable=SC2086
cmake --build build-fuzz --target $TARGETS -j "${CORTEX_BUILD_JOBS:-$(nproc)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/fuzz-logs
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
failed=()
for target in $TARGETS; do
  binary="build-fuzz/fuzz/$target"
  log="build-fuzz/fuzz-logs/$target.log"
  artifacts="build-fuzz/fuzz-artifacts/$target"
  mkdir -p "$artifacts" "$work/$target"
  : >"$log"
  regressions=(fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $target: ${#regressions[@]} regression input(s)"
    if ! "$binary" "${regressions[@]}" >>"$log" 2>&1; then
      echo "FAIL $target: a regression input crashes (log: $log)"
      tail -n 40 "$log"
      failed+=("$target")
      continue
    fi
  fi
  cp fuzz/corpus/"$target"/* "$work/$target/"
  if [ "$FUZZ_SECONDS" -gt 0 ]; then
    budget=(-max_total_time="$FUZZ_SECONDS")
    echo "== $target: fuzzing for ${FUZZ_SECONDS}s"
  else
    budget=(-runs=0)
    echo "== $target: running the seed corpus"
  fi
  if "$binary" "${budget[@]}" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/$target" >>"$log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$log" | tr '\n' ' ' || true
    echo
  else
    echo "FAIL $target (log: $log, input in $artifacts/)"
    tail -n 40 "$log"
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}"
  exit 1
fi
echo "fuzzing passed: $TARGETS"
