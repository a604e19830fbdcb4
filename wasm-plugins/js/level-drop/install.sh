#!/usr/bin/env bash
# Installs the JavaScript plugin toolchain (componentize-js, pinned in package-lock.json)
# from the npm registry. The test that builds this plugin
# (engine/wasm/tests/other_language.rs) skips, saying why, when it is missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  echo "npm not found: the JavaScript plugin test will be skipped" >&2
  exit 0
fi
npm ci --no-audit --no-fund
