"""A fake upstream for mirror tests: serves given bytes at given paths on loopback and counts
every request, so a test can assert that a second mirror build fetched nothing.

Ports come from LLMOPS_TEST_PORT_BASE (default 27100) upwards, the first free one.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


def free_port(start: int | None = None, count: int = 200) -> int:
    start = start or int(os.environ.get("LLMOPS_TEST_PORT_BASE", "27100"))
    for port in range(start, start + count):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + count - 1}")


class Origin:
    """files: path -> bytes. `requests` lists every (method, path) served."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[tuple[str, str]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, body: bool):
                path = unquote(self.path.split("?", 1)[0])
                origin.requests.append((self.command, path))
                data = origin.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "text/html" if path.endswith("/") else "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self):
                self._serve(True)

            def do_HEAD(self):
                self._serve(False)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Origin":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel(name: str, version: str) -> tuple[str, bytes]:
    """A minimal valid pure-Python wheel (filename, bytes) that pip can download and install."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: llmops-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist}.dist-info/RECORD,,\n"
    files[f"{dist}.dist-info/RECORD"] = record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, text)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


def index_page(files: dict[str, bytes]) -> bytes:
    """A find-links page linking every file with its #sha256= fragment."""
    links = "".join(f'<a href="{name}#sha256={sha256(data)}">{name}</a>\n' for name, data in files.items())
    return f"<html><body>\n{links}</body></html>\n".encode()
