"""Models in the mirror: Hugging Face repos at pinned revisions, in the layout server.py serves.

`hf/<org>/<name>/commits/<commit>/` holds the files, `commits/<commit>.json` lists them with
sha256 and size, `refs/<revision>` names the commit a branch or tag resolved to when the
mirror was built. Two ways in:
- `fetch_hub`: download `repo@revision` from the Hub (huggingface_hub, on a connected host);
  each file is checked against the sha256 the Hub lists for it (LFS files), the others are
  recorded as downloaded;
- `publish`: put a local model directory (your own weights, a generated test model) into the
  mirror under a repo id, so nodes fetch it exactly as they would fetch a Hub model.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Optional

from ansible_collections.llmops.platform.plugins.module_utils.files import replace_dir, write_if_changed
from ansible_collections.llmops.platform.plugins.module_utils.mirror import fetch as fetchmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror.server import hf_repo_dir, hf_resolve

# Files a serving or training run never reads (as the vLLM download init container skips them).
IGNORE = ("original/*", "*.pth")


class HfError(RuntimeError):
    pass


def listing(model_dir: str) -> list[dict[str, Any]]:
    out = []
    for base, dirs, files in os.walk(model_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(base, name)
            rel = os.path.relpath(path, model_dir).replace(os.sep, "/")
            out.append({"path": rel, "size": os.path.getsize(path), "sha256": fetchmod.sha256_file(path)})
    return out


def content_commit(files: list[dict[str, Any]]) -> str:
    """A 40-hex id for a published directory: the same files give the same id."""
    text = "".join(f"{f['path']}\0{f['sha256']}\n" for f in sorted(files, key=lambda f: f["path"]))
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def present(root: str, repo: str, revision: str) -> Optional[dict[str, Any]]:
    """{commit, files, size} when `repo@revision` is complete in the mirror (every file there
    with its recorded sha256), else None."""
    commit = hf_resolve(root, repo, revision)
    if commit is None:
        return None
    with open(os.path.join(hf_repo_dir(root, repo), "commits", commit + ".json"), encoding="utf-8") as handle:
        files = json.load(handle)["files"]
    base = os.path.join(hf_repo_dir(root, repo), "commits", commit)
    for entry in files:
        path = os.path.join(base, *entry["path"].split("/"))
        if not os.path.isfile(path) or os.path.getsize(path) != entry["size"]:
            return None
    return {"commit": commit, "files": files, "size": sum(f["size"] for f in files)}


def _install(root: str, repo: str, revision: str, commit: str, src_dir: str, files: list[dict[str, Any]]) -> None:
    base = hf_repo_dir(root, repo)
    dest = os.path.join(base, "commits", commit)
    with replace_dir(dest, prefix=f".{commit}-") as work:
        for entry in files:
            target = os.path.join(work, *entry["path"].split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(src_dir, *entry["path"].split("/")), target)
    listing_json = json.dumps({"repo": repo, "commit": commit, "files": files}, indent=1, sort_keys=True)
    write_if_changed(os.path.join(base, "commits", commit + ".json"), listing_json + "\n")
    if revision and revision != commit:
        write_if_changed(os.path.join(base, "refs", revision), commit + "\n")


def publish(root: str, repo: str, revision: str, model_dir: str) -> dict[str, Any]:
    """Put `model_dir` into the mirror as `repo@revision`; {commit, files, size, changed}."""
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise HfError(f"{model_dir} has no config.json: not a Hugging Face model directory")
    files = listing(model_dir)
    commit = content_commit(files)
    have = present(root, repo, commit)
    changed = have is None
    if changed:
        _install(root, repo, revision, commit, model_dir, files)
    elif revision and revision != commit and hf_resolve(root, repo, revision) != commit:
        write_if_changed(os.path.join(hf_repo_dir(root, repo), "refs", revision), commit + "\n")
        changed = True
    return {"commit": commit, "files": files, "size": sum(f["size"] for f in files), "changed": changed}


def fetch_hub(root: str, repo: str, revision: str, token: Optional[str] = None, endpoint: Optional[str] = None,
              timeout: float = 60.0) -> dict[str, Any]:
    """Download `repo@revision` from the Hub into the mirror; {commit, files, size, changed}."""
    have = present(root, repo, revision)
    if have is not None:  # a branch stays at the commit the mirror recorded (refs/<revision>)
        return {**have, "changed": False}
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise HfError("huggingface_hub is not installed in the Python that runs the build") from None
    api = HfApi(endpoint=endpoint, token=token or None)
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True, timeout=timeout)
    except Exception as exc:  # the hub client raises many types; all mean "not reachable here"
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise HfError(f"the Hub did not answer for {repo}@{revision} ({type(exc).__name__}: {reason})") from None
    commit = info.sha
    expected = {}
    for sibling in info.siblings or []:
        lfs = getattr(sibling, "lfs", None)
        if lfs is not None and getattr(lfs, "sha256", None):
            expected[sibling.rfilename] = lfs.sha256
    with tempfile.TemporaryDirectory(prefix="llmops-hf-") as work:
        local = snapshot_download(repo_id=repo, revision=commit, local_dir=work, token=token or None,
                                  endpoint=endpoint, ignore_patterns=list(IGNORE))
        files = [f for f in listing(local) if not f["path"].startswith(".cache/")]
        for entry in files:
            want = expected.get(entry["path"])
            if want and want != entry["sha256"]:
                raise HfError(f"{repo}@{commit}/{entry['path']}: sha256 {entry['sha256']} is not the Hub's {want}")
        _install(root, repo, revision, commit, local, files)
    return {"commit": commit, "files": files, "size": sum(f["size"] for f in files), "changed": True}
