"""A fake Prometheus HTTP API on loopback (the answer shapes of /api/v1/query_range and
/api/v1/query) with two vLLM replicas; records every query it was asked.

`window=False` (the monitoring page's tests): five points per series from the range's start,
values base + i, then a NaN. `window=True` (benchmark reports): a point every step across the
whole range, replica n constant at n + 1. Instant queries answer `newest` for every replica
(what `timestamp(...)` of the newest scrape would say).
"""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PODS = ("vllm-chat-0", "vllm-chat-1")


class FakePrometheus:
    def __init__(self, window: bool = False, newest: float = 1e12):
        self.queries: list[dict[str, str]] = []
        self.window = window
        self.newest = newest
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                parsed = urllib.parse.urlparse(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                if parsed.path == "/api/v1/query_range":
                    data = {"resultType": "matrix", "result": fake.matrix(params)}
                elif parsed.path == "/api/v1/query":
                    data = {"resultType": "vector", "result": [
                        {"metric": {"pod": pod}, "value": [0, str(fake.newest)]} for pod in PODS]}
                else:
                    self.send_error(404)
                    return
                fake.queries.append(params)
                body = json.dumps({"status": "success", "data": data}).encode()
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

    def matrix(self, params: dict[str, str]) -> list[dict]:
        start, step = float(params["start"]), float(params["step"])
        labels = [{"pod": pod, "instance": f"127.0.0.1:{8000 + n}", "model_name": "chat", "model": "chat",
                   "replica": pod} for n, pod in enumerate(PODS)]
        if self.window:
            times = [start + i * step for i in range(int((float(params["end"]) - start) / step) + 1)]
            return [{"metric": m, "values": [[t, str(n + 1)] for t in times]} for n, m in enumerate(labels)]
        return [{"metric": m, "values": [[start + i * step, str(base + i)] for i in range(5)] + [[start + 5 * step, "NaN"]]}
                for m, base in zip(labels, (1, 10))]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
