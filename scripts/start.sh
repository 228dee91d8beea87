#!/usr/bin/env bash
# The main job: until the proxy lands, a demo of the core deciding real-looking calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
node scripts/demo.js
