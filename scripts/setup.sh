#!/usr/bin/env bash
# Installs what toolgate needs on a fresh Debian 12 machine with Node 20.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v g++ >/dev/null || need+=(g++)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v emcc >/dev/null || need+=(emscripten)
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
[ -f /usr/include/benchmark/benchmark.h ] || need+=(libbenchmark-dev)
command -v chromium >/dev/null || need+=(chromium)
# tests/js/store-redis.test.js starts its own throwaway server from this package.
command -v redis-server >/dev/null || need+=(redis-server)
# tests/js/operate.test.js scrapes `toolgate serve` with a real Prometheus and runs promtool.
command -v prometheus >/dev/null || need+=(prometheus)
# scripts/fuzz.sh (run by test.sh): libFuzzer, ASan and UBSan come with clang.
command -v clang++-14 >/dev/null || need+=(clang-14)
compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a' >/dev/null || need+=(libclang-rt-14-dev)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# npm packages: reinstall when the lock file changed since the last install.
# A node_modules that is a link (a git worktree sharing another checkout's) is
# left alone: npm ci would empty the checkout it points to.
if [ -L node_modules ]; then
  echo "setup: node_modules is a link to $(readlink node_modules); not reinstalling it"
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# A Node 22 binary for the MCP conformance suite's CLI (tests/js/conformance.test.js),
# in its own folder: as a root dependency its node_modules/.bin/node would come
# first on PATH in every npm script and run all of npm test on Node 22.
if [ ! -f tests/node22/node_modules/.package-lock.json ] || [ tests/node22/package-lock.json -nt tests/node22/node_modules/.package-lock.json ]; then
  echo "setup: npm ci in tests/node22"
  npm ci --prefix tests/node22 --no-audit --no-fund --loglevel=error
fi
