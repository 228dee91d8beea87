#!/usr/bin/env bash
# Builds the native library and unit tests (build/native) and the
# WebAssembly package (wasm/dist). Incremental: re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "build: native (build/native)"
cmake -S . -B build/native -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOOLGATE_BENCH=ON >/dev/null
cmake --build build/native -j"$jobs"

echo "build: wasm (wasm/dist)"
# Debian's emcc runs its optimizer under the machine's Node; it needs Debian's acorn.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
# emcc's sysroot hides /usr/include; give it a directory holding only nlohmann.
mkdir -p build/wasm-include
ln -sfn /usr/include/nlohmann build/wasm-include/nlohmann
emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release \
  -DTOOLGATE_NLOHMANN_INCLUDE="$PWD/build/wasm-include" >/dev/null
cmake --build build/wasm -j"$jobs"
ls -l wasm/dist/toolgate_core.wasm wasm/dist/toolgate_core.mjs | awk '{print "build: " $5 " bytes  " $9}'
npm run build:web
