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
# The docs site (site/dist, served at /docs/): its live examples use the
# component build:web just wrote to web/dist. Rebuilt when anything it shows
# changed (pages, examples, the README's figures, the CLI's help, the .d.ts,
# the component), by content: build:web rewrites web/dist every time.
site_inputs=$(find site examples README.md wasm/index.d.ts web/dist/toolgate-playground.js web/dist/assets bin lib/cli package-lock.json \
  -type f -not -path 'site/dist/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f site/dist/index.html ] && [ "$(cat site/dist/.inputs-sha256 2>/dev/null)" = "$site_inputs" ]; then
  echo "build: site up to date (site/dist)"
else
  npm run build:site
  echo "$site_inputs" > site/dist/.inputs-sha256
fi
