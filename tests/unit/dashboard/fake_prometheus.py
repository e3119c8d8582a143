"""A fake Prometheus HTTP API on loopback: answers query_range with two series per query and
records every query it was asked (for the monitoring page's tests)."""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePrometheus:
    def __init__(self):
        self.queries: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                parsed = urllib.parse.urlparse(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                if parsed.path != "/api/v1/query_range":
                    self.send_error(404)
                    return
                fake.queries.append(params)
                start, step = float(params["start"]), float(params["step"])
                result = [
                    {"metric": {"pod": pod, "model_name": "chat", "model": "chat", "replica": pod},
                     "values": [[start + i * step, str(base + i)] for i in range(5)] + [[start + 5 * step, "NaN"]]}
                    for pod, base in (("vllm-chat-0", 1), ("vllm-chat-1", 10))
                ]
                body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
