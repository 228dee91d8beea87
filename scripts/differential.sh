#!/usr/bin/env bash
# Native vs WebAssembly: generated policies and call sequences through both
# builds of the core, compared line by line (tests/differential/README.md).
#
#   scripts/differential.sh [COUNT] [SEED]     COUNT cases (default
#                                              $DIFFERENTIAL_COUNT, else 100000),
#                                              deterministic by SEED (default 1)
#
# Needs build/native (with tests/differential/toolgate_differential) and
# wasm/dist from scripts/build.sh; the driver is rebuilt here if the core changed.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-${DIFFERENTIAL_COUNT:-100000}}
seed=${2:-${DIFFERENTIAL_SEED:-1}}

if [ ! -f build/native/CMakeCache.txt ] || [ ! -f wasm/dist/toolgate_core.wasm ]; then
  echo "differential: build first (bash scripts/build.sh)" >&2
  exit 1
fi
cmake --build build/native --target toolgate_differential -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
# A WebAssembly build older than the core would compare two different cores.
stale=$(find core -newer wasm/dist/toolgate_core.wasm \( -name '*.cpp' -o -name '*.h' \) | head -1)
if [ -n "$stale" ]; then
  echo "differential: wasm/dist is older than $stale; rebuild it (bash scripts/build.sh)" >&2
  exit 1
fi
node tests/differential/run.js --count "$count" --seed "$seed" --quiet
