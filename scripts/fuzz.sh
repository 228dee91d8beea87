#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang-14 with ASan + UBSan, in
# build/fuzz) and runs each for a bounded time, FUZZ_JOBS at once.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target (default
#                                             $FUZZ_SECONDS, else 300); 0 only
#                                             replays the corpora
#   targets: policy evaluate regex wire (default: all)
#
# Seeds come from tests/fuzz/corpus/<target>/ (committed, small); what the
# fuzzer learns accumulates in build/fuzz/corpus/<target>/ (minimized with
# -merge=1 after each run), so later runs start where earlier ones stopped.
# FUZZ_FRESH=1 (as test.sh sets it) starts from the seeds alone in a scratch
# directory instead, so a short run costs the same every time. A crash, leak,
# sanitizer report, timeout
# or failed invariant stops that target, leaves the input in
# build/fuzz/artifacts/<target>/ and makes the script exit 1; reproduce with
#   build/fuzz/tests/fuzz/fuzz_<target> build/fuzz/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${FUZZ_SECONDS:-300}}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(policy evaluate regex wire)
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
cxx=${FUZZ_CXX:-clang++-14}

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found; run scripts/setup.sh (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi

echo "fuzz: building (build/fuzz, $cxx, -fsanitize=fuzzer,address,undefined)"
cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DTOOLGATE_FUZZ=ON -DTOOLGATE_TESTS=OFF -DTOOLGATE_BENCH=OFF >/dev/null
cmake --build build/fuzz -j"$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

corpus_root=build/fuzz/corpus
if [ "${FUZZ_FRESH:-0}" = 1 ]; then
  corpus_root=build/fuzz/corpus-fresh
  rm -rf "$corpus_root"
fi

run_target() {
  local target=$1
  local binary=build/fuzz/tests/fuzz/fuzz_$target
  local work=$corpus_root/$target
  local artifacts=build/fuzz/artifacts/$target
  mkdir -p "$work" "$artifacts" build/fuzz/logs
  local args=(-timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1
    -dict="tests/fuzz/dict/$target.dict" -artifact_prefix="$artifacts/")
  if [ "$seconds" = 0 ]; then
    args+=(-runs=0)
  else
    args+=(-max_total_time="$seconds")
  fi
  "$binary" "${args[@]}" "$work" "tests/fuzz/corpus/$target" >"build/fuzz/logs/$target.log" 2>&1 || return 1
  # Keep the accumulated corpus small: only inputs that add coverage.
  if [ "$seconds" != 0 ] && [ "${FUZZ_FRESH:-0}" != 1 ]; then
    rm -rf "$work.merged" && mkdir -p "$work.merged"
    if "$binary" -merge=1 -timeout=10 -rss_limit_mb=2048 "$work.merged" "$work" >"build/fuzz/logs/$target.merge.log" 2>&1; then
      rm -rf "$work" && mv "$work.merged" "$work"
    else
      rm -rf "$work.merged"
    fi
  fi
}

echo "fuzz: ${targets[*]}: ${seconds} s each, ${jobs} at a time"
pids=()
names=()
failed=()
wait_one() {
  local pid=${pids[0]} name=${names[0]}
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  wait "$pid" || failed+=("$name")
}
for target in "${targets[@]}"; do
  [ ${#pids[@]} -ge "$jobs" ] && wait_one
  run_target "$target" &
  pids+=($!)
  names+=("$target")
done
while [ ${#pids[@]} -gt 0 ]; do wait_one; done

# One line per target: executions, executions per second, coverage, corpus.
printf '%-9s %12s %8s %8s %8s %10s %s\n' target execs exec/s cov ft corpus status
for target in "${targets[@]}"; do
  log=build/fuzz/logs/$target.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  ft=$( (grep -o 'ft: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  files=$( (find "$corpus_root/$target" "tests/fuzz/corpus/$target" -type f || true) | wc -l)
  status=ok
  [[ " ${failed[*]} " == *" $target "* ]] && status=FAILED
  printf '%-9s %12s %8s %8s %8s %10s %s\n' "$target" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "$files" "$status"
done

if [ ${#failed[@]} -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "fuzz: $target FAILED; the end of build/fuzz/logs/$target.log:" >&2
    tail -n 60 "build/fuzz/logs/$target.log" >&2
    ls -1 "build/fuzz/artifacts/$target/" >&2 || true
  done
  exit 1
fi
