"""The mirror's HTTP server: python3 server.py --root DIR [--bind ADDR] [--port PORT].

Standard library only (the mirror_server role copies this file to the host that serves the
mirror and runs it under the platform's supervisor or a systemd unit). Read-only. It serves:

- every file under DIR as is (apt/, pypi/, files/, manifest.json ...), like `python3 -m
  http.server`, with an ETag (the file's sha256 where the manifest knows it);
- `/hf/...`: the part of the Hugging Face Hub API that huggingface_hub's snapshot_download and
  hf_hub_download use (repo info, tree, resolve with X-Repo-Commit and ETag headers), for models
  stored under DIR/hf/<org>/<name>/ (commits/<sha>/ files, commits/<sha>.json listing them with
  sha256 and size, refs/<revision> naming a commit), so HF_ENDPOINT=<mirror>/hf works unchanged
  for vLLM, LLaMA-Factory and the platform's own model resolution;
- `/v2/...`: a read-only OCI distribution API (manifests and blobs by tag or digest) for the
  image layouts under DIR/images/<registry>/<repository>/ (skopeo's `oci:` layout), so
  containerd's hosts.toml and K3s's registries.yaml can point at this server as a mirror of
  every upstream registry (containerd sends the upstream registry as `?ns=`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import sys
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REGISTRY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


# ---- Hugging Face layout (also written by module_utils/mirror/hf.py) ----

def hf_repo_dir(root: str, repo: str) -> str:
    return os.path.join(root, "hf", *repo.split("/"))


def hf_resolve(root: str, repo: str, revision: str) -> str | None:
    """The commit `revision` (a commit or a ref name) names in the mirror, or None."""
    base = hf_repo_dir(root, repo)
    if COMMIT_RE.match(revision) and os.path.isfile(os.path.join(base, "commits", revision + ".json")):
        return revision
    ref = os.path.join(base, "refs", revision)
    if "/" not in revision and os.path.isfile(ref):
        with open(ref, encoding="utf-8") as handle:
            commit = handle.read().strip()
        if COMMIT_RE.match(commit):
            return commit
    return None


def hf_files(root: str, repo: str, commit: str) -> list[dict]:
    with open(os.path.join(hf_repo_dir(root, repo), "commits", commit + ".json"), encoding="utf-8") as handle:
        return json.load(handle)["files"]


# ---- OCI layout ----

def oci_layouts(root: str, name: str, ns: str | None) -> list[str]:
    base = os.path.join(root, "images")
    registries = [ns] if ns else (sorted(os.listdir(base)) if os.path.isdir(base) else [])
    out = []
    for registry in registries:
        path = os.path.join(base, registry, *name.split("/"))
        if os.path.isfile(os.path.join(path, "index.json")):
            out.append(path)
    return out


def oci_find(layout: str, reference: str) -> dict | None:
    """The descriptor of `reference` (tag or digest) in an OCI layout, or None."""
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as handle:
        index = json.load(handle)
    for desc in index.get("manifests", []):
        if reference == desc.get("digest") or reference == desc.get("annotations", {}).get(REF_NAME):
            return desc
    if DIGEST_RE.match(reference) and os.path.isfile(blob_path(layout, reference)):
        return {"digest": reference, "mediaType": ""}
    return None


def blob_path(layout: str, digest: str) -> str:
    algo, _sep, hexpart = digest.partition(":")
    return os.path.join(layout, "blobs", algo, hexpart)


def media_type(path: str, fallback: str) -> str:
    if fallback:
        return fallback
    with open(path, "rb") as handle:
        try:
            return json.load(handle).get("mediaType", "") or OCI_INDEX
        except ValueError:
            return "application/octet-stream"


class Handler(SimpleHTTPRequestHandler):
    server_version = "llmops-mirror/1"
    root = "."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.root, **kwargs)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    # -- dispatch --
    def do_GET(self):
        self._dispatch(head=False)

    def do_HEAD(self):
        self._dispatch(head=True)

    def _dispatch(self, head: bool):
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if ".." in path.split("/"):
            return self.send_error(HTTPStatus.BAD_REQUEST, "no .. in paths")
        if path == "/v2" or path.startswith("/v2/"):
            return self._registry(path, parse_qs(parts.query), head)
        if path.startswith("/hf/"):
            return self._hf(path[len("/hf/"):], head)
        return super().do_HEAD() if head else super().do_GET()

    # -- plain files: an ETag so clients can cache --
    def end_headers(self):
        if getattr(self, "_etag", None):
            self.send_header("ETag", f'"{self._etag}"')
        super().end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        self._etag = None
        if os.path.isfile(path):
            stat = os.stat(path)
            self._etag = hashlib.sha256(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        return super().send_head()

    # -- helpers --
    def _json(self, obj, head: bool, status=HTTPStatus.OK, headers=None):
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self._etag = None
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _file(self, path: str, head: bool, content_type: str, headers: dict):
        size = os.path.getsize(path)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        for key, value in headers.items():
            self.send_header(key, value)
        self._etag = None
        self.end_headers()
        if not head:
            with open(path, "rb") as handle:
                while True:
                    chunk = handle.read(1 << 20)
                    if not chunk:
                        break
                    self.wfile.write(chunk)

    def _not_found(self, head: bool, message: str, code: str = "NAME_UNKNOWN"):
        self._json({"errors": [{"code": code, "message": message}], "error": message}, head, HTTPStatus.NOT_FOUND,
                   {"X-Error-Code": "EntryNotFound" if code == "ENTRY" else "RepoNotFound"})

    # -- Hugging Face Hub (read-only subset) --
    def _hf(self, rest: str, head: bool):
        api = re.match(r"^api/models/(?P<repo>[^/]+/[^/]+)/(?P<what>revision|tree)/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$",
                       rest)
        if api:
            repo, rev = api["repo"], api["rev"]
            commit = hf_resolve(self.root, repo, rev)
            if commit is None:
                return self._not_found(head, f"{repo}@{rev} is not in this mirror (build it with playbooks/mirror.yml)")
            files = hf_files(self.root, repo, commit)
            if api["what"] == "revision":
                return self._json({"id": repo, "modelId": repo, "sha": commit, "private": False, "gated": False,
                                   "disabled": False, "tags": [], "downloads": 0, "likes": 0,
                                   "siblings": [{"rfilename": f["path"], "size": f["size"],
                                                 "lfs": {"sha256": f["sha256"], "size": f["size"], "pointerSize": 0}}
                                                for f in files]}, head)
            sub = (api["sub"] or "").strip("/")
            entries = [f for f in files if not sub or f["path"].startswith(sub + "/")]
            return self._json([{"type": "file", "oid": f["sha256"], "size": f["size"], "path": f["path"],
                                "lfs": {"oid": f["sha256"], "size": f["size"], "pointerSize": 0}}
                               for f in entries], head)
        match = re.match(r"^(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", rest)
        if match:
            repo, rev, name = match["repo"], match["rev"], posixpath.normpath(match["file"])
            commit = hf_resolve(self.root, repo, rev)
            if commit is None:
                return self._not_found(head, f"{repo}@{rev} is not in this mirror")
            entry = next((f for f in hf_files(self.root, repo, commit) if f["path"] == name), None)
            if entry is None:
                return self._not_found(head, f"{name} is not in {repo}@{commit}", code="ENTRY")
            path = os.path.join(hf_repo_dir(self.root, repo), "commits", commit, *name.split("/"))
            etag = f'"{entry["sha256"]}"'
            return self._file(path, head, "application/octet-stream",
                              {"X-Repo-Commit": commit, "ETag": etag, "X-Linked-Etag": etag,
                               "X-Linked-Size": str(entry["size"])})
        return self._not_found(head, f"/hf/{rest}: not a Hub API path this mirror serves")

    # -- OCI distribution (read-only) --
    def _registry(self, path: str, query: dict, head: bool):
        base = {"Docker-Distribution-API-Version": "registry/2.0"}
        if path in ("/v2", "/v2/"):
            return self._json({}, head, headers=base)
        match = re.match(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$", path)
        if not match:
            return self._not_found(head, f"{path}: not a registry path")
        ns = (query.get("ns") or [None])[0]
        if ns is not None and not REGISTRY_RE.match(ns):
            return self._not_found(head, f"ns={ns!r} is not a registry host", "NAME_INVALID")
        for layout in oci_layouts(self.root, match["name"], ns):
            desc = oci_find(layout, match["ref"]) if match["kind"] == "manifests" else \
                ({"digest": match["ref"], "mediaType": "application/octet-stream"}
                 if DIGEST_RE.match(match["ref"]) else None)
            if desc is None:
                continue
            blob = blob_path(layout, desc["digest"])
            if not os.path.isfile(blob):
                continue
            kind = media_type(blob, desc.get("mediaType", "")) if match["kind"] == "manifests" else \
                "application/octet-stream"
            return self._file(blob, head, kind, {**base, "Docker-Content-Digest": desc["digest"]})
        code = "MANIFEST_UNKNOWN" if match["kind"] == "manifests" else "BLOB_UNKNOWN"
        where = f"{ns}/" if ns else ""
        return self._not_found(head, f"{where}{match['name']}:{match['ref']} is not in this mirror", code)


def make_server(root: str, bind: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server for `root` (its own handler class, so several can run in one process)."""
    handler = type("MirrorHandler", (Handler,), {"root": os.path.abspath(root)})
    return ThreadingHTTPServer((bind, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the mirror directory (platform_mirror_dir)")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--label", default="", help="ignored: a supervisor restarts the server when it changes")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        parser.error(f"--root {args.root} is not a directory")
    server = make_server(args.root, args.bind, args.port)
    sys.stderr.write(f"llmops mirror: serving {os.path.abspath(args.root)} on http://{args.bind}:{args.port}/\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
