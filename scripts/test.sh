#!/usr/bin/env bash
# Every test: native unit tests (ctest) and the JS suites (node --test) that
# load the WebAssembly package in Node, in Chromium and in workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

echo "test: native unit tests"
ctest --test-dir build/native --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"

echo "test: JS suites"
node --test --test-concurrency=2 tests/js/
