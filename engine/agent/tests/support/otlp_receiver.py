"""An OTLP/HTTP logs receiver for the tests, built on the `opentelemetry-proto` protobuf
definitions from PyPI: an implementation of OTLP independent of Weir's.

    otlp_receiver.py RECORD

Listens on 127.0.0.1 (a free port, printed as `PORT n` on stdout). Each POST to /v1/logs is
gunzipped when `Content-Encoding: gzip`, decoded as an ExportLogsServiceRequest (protobuf,
or OTLP JSON for `Content-Type: application/json`: json_format.Parse rejects any field the
specification does not have) and appended to RECORD as one JSON line (proto field names);
the answer is 200 with an empty ExportLogsServiceResponse in the request's encoding. A body
that does not decode gets 400 and is recorded as {"error": ...}.
"""

import gzip
import http.server
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        is_json = self.headers.get("Content-Type", "").startswith("application/json")
        request = logs_service_pb2.ExportLogsServiceRequest()
        try:
            if is_json:
                json_format.Parse(body.decode(), request)
            else:
                request.ParseFromString(body)
        except Exception as e:  # noqa: BLE001 - any decoding failure is the test's finding
            self.record({"error": str(e)})
            self.answer(400, b"", "text/plain")
            return
        self.record(json_format.MessageToDict(request, preserving_proto_field_name=True))
        response = logs_service_pb2.ExportLogsServiceResponse()
        if is_json:
            self.answer(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            self.answer(200, response.SerializeToString(), "application/x-protobuf")

    def record(self, value):
        with open(RECORD, "a") as f:
            f.write(json.dumps(value) + "\n")

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    RECORD = sys.argv[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
