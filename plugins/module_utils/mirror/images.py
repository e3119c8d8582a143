"""Container images into the mirror: skopeo copies each to an OCI layout under
images/<registry>/<repository>/, tagged, and the manifest digest is recorded (and must equal
the one pinned in platform_image_digests when there is one). server.py serves the layouts as a
read-only registry."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any, Optional

from ansible_collections.llmops.platform.plugins.module_utils.mirror.server import REF_NAME, blob_path


class ImageError(RuntimeError):
    pass


def layout_digest(layout: str, tag: str) -> Optional[str]:
    """The manifest digest of `tag` in an OCI layout when it and every blob it names are there."""
    index = os.path.join(layout, "index.json")
    if not os.path.isfile(index):
        return None
    with open(index, encoding="utf-8") as handle:
        manifests = json.load(handle).get("manifests", [])
    desc = next((m for m in manifests if m.get("annotations", {}).get(REF_NAME) == tag), None)
    if desc is None or not _complete(layout, desc["digest"]):
        return None
    return desc["digest"]


def _complete(layout: str, digest: str) -> bool:
    path = blob_path(layout, digest)
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as handle:
        try:
            doc = json.load(handle)
        except ValueError:
            return True  # a layer
    children = [m["digest"] for m in doc.get("manifests", [])] + \
        ([doc["config"]["digest"]] if "config" in doc else []) + [layer["digest"] for layer in doc.get("layers", [])]
    return all(_complete(layout, child) if child.startswith("sha256:") else False for child in children)


def layout_size(layout: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(os.path.join(layout, "blobs")):
        total += sum(os.path.getsize(os.path.join(base, f)) for f in files)
    return total


def copy(ref: str, layout: str, tag: str, digest: str = "", timeout: float = 600.0,
         skopeo: str = "skopeo") -> dict[str, Any]:
    """Copy `ref` (pulled by `digest` when pinned) into `layout` as `tag`; {digest, size, changed}."""
    have = layout_digest(layout, tag)
    if have and (not digest or have == digest):
        return {"digest": have, "size": layout_size(layout), "changed": False}
    if shutil.which(skopeo) is None:
        raise ImageError("skopeo is not installed on the build host (apt-get install skopeo)")
    source = f"docker://{ref.rsplit(':', 1)[0] + '@' + digest if digest else ref}"
    os.makedirs(layout, exist_ok=True)
    try:
        # A pinned digest may be a multi-arch index: --all keeps it, so the layout has that digest.
        args = ["--all", "--preserve-digests"] if digest else []
        done = subprocess.run([skopeo, "copy", "--retry-times", "2", *args, source, f"oci:{layout}:{tag}"],
                              capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ImageError(f"skopeo copy {source} took longer than {int(timeout)} s") from None
    if done.returncode != 0:
        raise ImageError(f"skopeo copy {source}: {(done.stderr.strip().splitlines() or ['failed'])[-1][:300]}")
    got = layout_digest(layout, tag)
    if got is None:
        raise ImageError(f"skopeo copy {source} left no complete {tag} in {layout}")
    if digest and got != digest:
        raise ImageError(f"{ref}: copied manifest {got} is not the pinned {digest}")
    return {"digest": got, "size": layout_size(layout), "changed": True}
