"""An HTTPS server for the TLS tests, on Python's ssl module (OpenSSL): a TLS implementation
independent of Weir's rustls.

    https_server.py CERT KEY RECORD [CLIENT_CA]

Listens on 127.0.0.1 (a free port, printed as `PORT n` on stdout), answers every POST with
200 (an Elasticsearch `_bulk` response, every item 201, for paths ending in `_bulk`) and
appends one JSON line per request to RECORD: path, Authorization header, body (gunzipped).
With CLIENT_CA, clients must present a certificate signed by it (mutual TLS).
"""

import gzip
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with open(RECORD, "a") as f:
            f.write(json.dumps({
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "body": body.decode(),
            }) + "\n")
        if self.path.endswith("_bulk"):
            items = [{"index": {"status": 201}} for _ in range(body.count(b"\n") // 2)]
            answer = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        else:
            answer = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # refused handshakes are what some tests are about


if __name__ == "__main__":
    cert, key, RECORD = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if len(sys.argv) > 4:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(sys.argv[4])
    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
