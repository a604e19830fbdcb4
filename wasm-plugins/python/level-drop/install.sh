#!/usr/bin/env bash
# Installs the Python plugin toolchain: componentize-py, pinned, from PyPI, into a virtual
# environment here (.venv, git-ignored). componentize-py ships its own CPython for
# wasm32-wasip2, so the python3 that runs it is only the installer's.
#
# 0.25.1 makes components that import WASI 0.2 only (wasi:*@0.2.9, which wasmtime 48 links
# as 0.2) and none of the component-model async intrinsics: the host loads them as they are.
# The test that builds this plugin (engine/wasm/tests/other_language.rs) skips, saying why,
# when the toolchain is missing, and fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")"
version=0.25.1
if [ "$(.venv/bin/componentize-py --version 2>/dev/null)" = "componentize-py $version" ]; then
  exit 0
fi
if ! command -v python3 >/dev/null; then
  echo "python3 not found: the Python plugin test will be skipped" >&2
  exit 0
fi
rm -rf .venv
if python3 -m venv .venv 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "componentize-py==$version"
else
  # Debian's python3 without python3-venv has no ensurepip: a bare venv, filled by the
  # system's pip (the OpenTelemetry set-up needs that pip too).
  rm -rf .venv
  python3 -m venv --without-pip .venv
  python3 -m pip --python .venv/bin/python install --quiet --disable-pip-version-check "componentize-py==$version"
fi
.venv/bin/componentize-py --version
