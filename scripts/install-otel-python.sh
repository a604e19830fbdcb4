#!/usr/bin/env bash
# Installs the Python packages the OpenTelemetry tests use as the independent end of OTLP,
# from PyPI, pinned: the `opentelemetry-proto` protobuf definitions, with which the receiver
# the tests start (engine/agent/tests/support/otlp_receiver.py) decodes Weir's requests, and
# the OpenTelemetry SDK with its OTLP/HTTP exporter, which sends logs to Weir's
# `opentelemetry` input (engine/agent/tests/support/otlp_send.py). Also the official
# Kubernetes Python client, whose models (generated from the Kubernetes 1.37 OpenAPI spec) the
# deployment tests validate deploy/kubernetes against (engine/agent/tests/support/k8s_validate.py).
#
# Puts them under target/test-tools/python; the tests add that to PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=target/test-tools/python
stamp=$dest/.installed-3
if [ -f "$stamp" ]; then
  exit 0
fi
rm -rf "$dest"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target "$dest" \
  "opentelemetry-proto==1.45.2" "protobuf==7.36.2" \
  "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-http==1.45.2" \
  "kubernetes==37.0.3"
touch "$stamp"
