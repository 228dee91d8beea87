#!/usr/bin/env bash
# Every benchmark; prints figures (Markdown) and writes bench/results/*.json.
# Not a test: nothing here passes or fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
mkdir -p bench/results
echo "## Native core (Google Benchmark, $(g++ --version | head -1))"
build/native/bench/native/toolgate_bench --benchmark_min_time=0.3 --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true \
  --benchmark_out=bench/results/core-native.json --benchmark_out_format=json "$@"
echo
echo "## WebAssembly core"
node bench/js/core.bench.js
echo
echo "## MCP proxy on loopback (autocannon; toolgate serve vs direct and a bare proxy)"
node bench/proxy/proxy.bench.js
echo
echo "## Browser playground (headless Chromium)"
if [ -f web/dist/index.html ]; then
  node bench/web/playground.bench.js
else
  echo "skipped: web/dist/index.html does not exist (npm run build:web)"
fi
