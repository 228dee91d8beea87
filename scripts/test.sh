#!/usr/bin/env bash
# Every test: native unit tests (ctest) and the JS suites (node --test) that
# load the WebAssembly package in Node, in Chromium and in workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "test: native unit tests"
ctest --test-dir build/native --output-on-failure -j"$jobs"

echo "test: native unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTOOLGATE_SANITIZE=ON >/dev/null
cmake --build build/sanitize -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/sanitize --output-on-failure -j"$jobs"

fuzz_seconds=${FUZZ_SECONDS:-20}
echo "test: libFuzzer targets, ${fuzz_seconds} s each (FUZZ_SECONDS; longer: scripts/fuzz.sh SECONDS)"
FUZZ_FRESH=1 bash scripts/fuzz.sh "$fuzz_seconds"

differential_count=${DIFFERENTIAL_COUNT:-5000}
echo "test: native vs WebAssembly on ${differential_count} generated cases (DIFFERENTIAL_COUNT; more: scripts/differential.sh)"
bash scripts/differential.sh "$differential_count"

echo "test: JS suites"
node --test --test-concurrency=2 tests/js/

# The handler's cases again over the Node runtime's upstream transport and
# hashing (worker/node-transport.js, node:crypto) instead of fetch and WebCrypto.
echo "test: proxy handler over the node:http transport"
TOOLGATE_TEST_TRANSPORT=node node --test tests/js/proxy-handler.test.js
