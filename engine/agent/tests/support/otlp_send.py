"""Sends log records to an OTLP/HTTP endpoint with the OpenTelemetry SDK and its OTLP/HTTP
exporter (protobuf), from PyPI: a sender independent of Weir.

    otlp_send.py ENDPOINT N

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

endpoint, n = sys.argv[1], int(sys.argv[2])
provider = LoggerProvider(resource=Resource.create({
    "k8s.namespace.name": "shop",
    "k8s.pod.name": "web-1",
    "service.name": "checkout",
}))
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint), max_export_batch_size=100))
log = logging.getLogger("weir-test")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]
for i in range(n):
    log.log(levels[i % 4], "order %d", i, extra={"order_id": i, "user": f"u{i}"})
ok = provider.force_flush(30_000)
provider.shutdown()
sys.exit(0 if ok else 1)
