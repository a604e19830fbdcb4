"""Sends log records to an OTLP/HTTP endpoint with the OpenTelemetry SDK and its OTLP/HTTP
exporter (protobuf), from PyPI: a sender independent of Weir.

    otlp_send.py ENDPOINT N [CA_FILE]

With CA_FILE, an https:// ENDPOINT is verified against it.

Record i: body "order i", levels rotating DEBUG, INFO, WARNING, ERROR, attributes order_id=i
and user="u<i>", resource k8s.namespace.name=shop, k8s.pod.name=web-1, service.name=checkout.
Exits non-zero when the exporter could not deliver.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource


class Checked(OTLPLogExporter):
    """The exporter, remembering failed exports (force_flush does not report them)."""

    failed = 0

    def export(self, batch):
        result = super().export(batch)
        if result.name != "SUCCESS":  # LogExportResult, LogRecordExportResult in newer SDKs
            Checked.failed += 1
        return result


endpoint, n = sys.argv[1], int(sys.argv[2])
ca_file = sys.argv[3] if len(sys.argv) > 3 else None
provider = LoggerProvider(resource=Resource.create({
    "k8s.namespace.name": "shop",
    "k8s.pod.name": "web-1",
    "service.name": "checkout",
}))
provider.add_log_record_processor(BatchLogRecordProcessor(
    Checked(endpoint=endpoint, certificate_file=ca_file), max_export_batch_size=100))
log = logging.getLogger("weir-test")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]
for i in range(n):
    log.log(levels[i % 4], "order %d", i, extra={"order_id": i, "user": f"u{i}"})
ok = provider.force_flush(30_000)
provider.shutdown()
sys.exit(0 if ok and Checked.failed == 0 else 1)
