#!/usr/bin/env bash
# The main job, until the proxy lands: the core deciding the example calls,
# then the browser playground served on http://127.0.0.1:8787/ (PORT to change).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
node scripts/demo.js
exec node scripts/serve-web.js
