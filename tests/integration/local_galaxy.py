"""A Galaxy (v3 API) server on loopback that publishes collections found on this machine.

No Galaxy server is reachable here, yet the collection's promise is that a Galaxy install
of its artifact pulls in what galaxy.yml declares. This server answers the four calls
`ansible-galaxy collection install` makes (API root, version list, version metadata,
artifact download) for installed collections — by default those bundled with the
`ansible` package — so the real resolver walks the real dependency graph offline.

An installed collection is not an artifact: the bundle drops files (tests, CI config) that
its FILES.json still lists. Each collection is re-packed with the entries actually present;
their sha256 values are kept, so ansible-galaxy still verifies every file it extracts.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml


def pack_installed_collection(path: str) -> bytes:
    """A collection artifact (tar.gz) of the installed collection at PATH."""
    with open(os.path.join(path, "FILES.json"), encoding="utf-8") as handle:
        files = json.load(handle)
    files["files"] = [entry for entry in files["files"]
                      if entry["name"] == "." or os.path.lexists(os.path.join(path, entry["name"]))]
    files_json = json.dumps(files, indent=4).encode()
    with open(os.path.join(path, "MANIFEST.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    manifest_json = json.dumps(manifest, indent=4).encode()

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, data in (("MANIFEST.json", manifest_json), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for entry in files["files"]:
            if entry["name"] != ".":
                tar.add(os.path.join(path, entry["name"]), arcname=entry["name"], recursive=False)
    return buffer.getvalue()


class LocalGalaxy:
    """Serve every collection under ROOTS (directories that contain `ansible_collections`)."""

    def __init__(self, roots: list[str]):
        self.collections: dict[tuple[str, str], str] = {}
        for root in roots:
            base = os.path.join(root, "ansible_collections")
            for namespace in sorted(os.listdir(base)):
                ns_dir = os.path.join(base, namespace)
                if not os.path.isdir(ns_dir):
                    continue
                for name in sorted(os.listdir(ns_dir)):
                    if os.path.isfile(os.path.join(ns_dir, name, "MANIFEST.json")):
                        self.collections.setdefault((namespace, name), os.path.join(ns_dir, name))
        self._artifacts: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LocalGalaxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def info(self, namespace: str, name: str) -> dict:
        with open(os.path.join(self.collections[(namespace, name)], "MANIFEST.json"), encoding="utf-8") as handle:
            return json.load(handle)["collection_info"]

    def requires_ansible(self, namespace: str, name: str) -> str | None:
        """meta/runtime.yml's requires_ansible: the resolver checks it against ansible-core."""
        runtime = os.path.join(self.collections[(namespace, name)], "meta", "runtime.yml")
        if not os.path.isfile(runtime):
            return None
        with open(runtime, encoding="utf-8") as handle:
            return (yaml.safe_load(handle) or {}).get("requires_ansible")

    def artifact(self, namespace: str, name: str) -> bytes:
        with self._lock:
            key = (namespace, name)
            if key not in self._artifacts:
                self._artifacts[key] = pack_installed_collection(self.collections[key])
            return self._artifacts[key]

    def _respond(self, path: str) -> tuple[int, str, bytes]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if not parts:  # ansible-galaxy tries the server root first, then /api/
            return 404, "text/plain", b"not found"
        if parts == ["api"]:
            return self._json({"available_versions": {"v3": "v3/"}})
        if parts[0] == "download" and len(parts) == 2:
            namespace, name, _ = parts[1].split("-", 2)
            return 200, "application/gzip", self.artifact(namespace, name)
        if parts[:3] != ["api", "v3", "collections"] or len(parts) < 5:
            return 404, "text/plain", b"not found"
        key = (parts[3], parts[4])
        if key not in self.collections:
            return self._json({"errors": [{"status": "404", "code": "not_found"}]}, 404)
        info = self.info(*key)
        version = info["version"]
        if len(parts) == 5:
            return self._json({"namespace": key[0], "name": key[1], "updated_at": "2026-01-01T00:00:00Z",
                               "created_at": "2026-01-01T00:00:00Z"})
        if len(parts) == 6 and parts[5] == "versions":
            return self._json({"meta": {"count": 1}, "links": {"next": None},
                               "data": [{"version": version, "href": f"/{'/'.join(parts)}/{version}/",
                                         "requires_ansible": self.requires_ansible(*key)}]})
        if len(parts) == 7 and parts[6] == version:
            file_name = f"{key[0]}-{key[1]}-{version}.tar.gz"
            return self._json({
                "namespace": {"name": key[0]}, "collection": {"name": key[1]}, "version": version,
                "href": "/" + "/".join(parts) + "/",
                "download_url": f"{self.url}download/{file_name}",
                "artifact": {"filename": file_name,
                             "sha256": hashlib.sha256(self.artifact(*key)).hexdigest()},
                "metadata": {"dependencies": info.get("dependencies") or {}},
            })
        return self._json({"errors": [{"status": "404", "code": "not_found"}]}, 404)

    @staticmethod
    def _json(data: dict, status: int = 200) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(data).encode()

    def _handler(self):
        galaxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                galaxy.requests.append(self.path)
                status, content_type, body = galaxy._respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler
