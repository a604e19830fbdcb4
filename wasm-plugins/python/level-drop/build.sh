#!/usr/bin/env bash
# Builds app.py into a component for weir:plugin/processor@0.1.0.
# Usage: build.sh [OUT.wasm]   (default: level-drop.wasm here)
#
# componentize-py generates the Python bindings for the world (package `wit_world`) as it
# builds, so none are kept here. To read them, or for an editor:
#   .venv/bin/componentize-py -d ../../../sdk-wit/wit/deps/plugin-0.1.0 -w processor bindings DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/level-drop.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
"$here/.venv/bin/componentize-py" --quiet \
  -d "$here/../../../sdk-wit/wit/deps/plugin-0.1.0" -w processor \
  componentize --python-path "$here" app -o "$out"
echo "$out"
