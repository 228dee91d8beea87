#!/usr/bin/env bash
# The main job: toolgate serve in front of a real MCP server
# (@modelcontextprotocol/server-everything), with a demo grant, the approvals
# page and the policy playground. Prints the MCP URL and the demo token.
# Installs what is missing first (scripts/setup.sh via build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec node scripts/start-demo.js
