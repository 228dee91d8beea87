#!/usr/bin/env bash
# Every benchmark, then the summary: each benchmark prints Markdown and writes
# bench/results/<name>.json and <name>.md; bench/report.js collects them into
# bench/results/summary.md and summary.json (and site/benchmarks.md between its
# bench:summary markers). Not a test: nothing here passes or fails on a number;
# the exit status is non-zero only when a benchmark could not run.
#
#   npm run bench                   # everything (~15 min on 2 cores)
#   npm run bench -- --quick        # smoke run of the whole pipeline (a few minutes)
#   npm run bench -- --benchmark_filter=Typical   # extra flags go to Google Benchmark
set -uo pipefail
cd "$(dirname "$0")/.."

quick=()
gbench_extra=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    --benchmark_*) gbench_extra+=("$arg") ;;
    *) echo "bench.sh: unknown argument $arg (use --quick, or --benchmark_* for Google Benchmark)" >&2; exit 2 ;;
  esac
done
if [ "${npm_lifecycle_event:-}" = bench ]; then command="npm run bench"; else command="bash scripts/bench.sh"; fi
[ $# -gt 0 ] && command="$command${npm_lifecycle_event:+ --} $*"

bash scripts/build.sh >/dev/null || { echo "bench.sh: the build failed" >&2; exit 1; }
mkdir -p bench/results/raw
since=$(node -e 'console.log(Date.now())')
failed=()

run() {
  local name=$1
  shift
  echo
  echo "## $name"
  if ! "$@"; then
    failed+=("$name")
    echo "bench.sh: $name failed" >&2
  fi
}

# Native: Google Benchmark, the percentile loop and the compile scaling, merged
# into bench/results/core-native.{json,md} (raw outputs in bench/results/raw/).
native() {
  local bin=build/native/bench/native/toolgate_bench raw=bench/results/raw
  local gbench_flags=(--benchmark_min_time=0.3 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
  [ ${#quick[@]} -gt 0 ] && gbench_flags=(--benchmark_min_time=0.02)
  echo "Google Benchmark ($(g++ --version | head -1))" >&2
  "$bin" "${gbench_flags[@]}" "${gbench_extra[@]}" \
    --benchmark_out=$raw/native-gbench.json --benchmark_out_format=json >&2 || return 1
  "$bin" --percentiles "${quick[@]}" --json=$raw/native-percentiles.json >/dev/null || return 1
  "$bin" --compile-scaling "${quick[@]}" --json=$raw/native-compile.json >/dev/null || return 1
  node bench/native/report-native.js "${quick[@]}" --gbench $raw/native-gbench.json \
    --percentiles $raw/native-percentiles.json --compile $raw/native-compile.json
}

optional() {
  local name=$1 file=$2
  if [ -f "$file" ]; then
    # --quick only to scripts that know it (a parseArgs script rejects unknown flags).
    if [ ${#quick[@]} -gt 0 ] && ! grep -q -- 'quick' "$file"; then
      echo "bench.sh: $file takes no --quick; it runs in full" >&2
      run "$name" node "$file"
    else
      run "$name" node "$file" "${quick[@]}"
    fi
  else
    echo
    echo "## $name"
    echo "skipped: $file does not exist"
  fi
}

run core-native native
run core-js node bench/js/core.bench.js "${quick[@]}"
run core-matrix node bench/js/matrix.bench.js "${quick[@]}"
run replay node bench/js/replay.bench.js "${quick[@]}"
run cold-start node bench/js/cold-start.bench.js "${quick[@]}"
optional cedar bench/cedar/cedar.bench.js
optional redis-cluster bench/scale/redis-cluster.bench.js
optional durable-objects bench/scale/durable-objects.bench.js
optional proxy bench/proxy/proxy.bench.js
optional proxy-fairness bench/proxy/fairness.bench.js
if [ -f web/dist/index.html ]; then
  optional playground bench/web/playground.bench.js
else
  echo; echo "## playground"; echo "skipped: web/dist/index.html does not exist (npm run build:web)"
fi
optional site site/bench.js

echo
failed_list=$(IFS=,; echo "${failed[*]}")
node bench/report.js "${quick[@]}" --since "$since" --failed "$failed_list" --command "$command" || exit 1
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench.sh: failed: ${failed[*]}" >&2
  exit 1
fi
