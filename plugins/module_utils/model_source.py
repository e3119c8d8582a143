"""Resolve a model source (generated:, path:, hf:) to a local Hugging Face model directory.

All three schemes end in the same `check_model_dir`, so a generated tiny model is
validated exactly like a downloaded one; servers are only started on a directory that
passed it. Resolution happens before any server starts, so a missing model fails early.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.inventory import parse_source

COMPLETE_MARKER = ".llmops-complete"
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class ModelSourceError(RuntimeError):
    pass


def check_model_dir(path: str, source: str) -> list[str]:
    """Fail unless `path` holds a loadable HF causal LM: config, weights and a tokenizer."""
    if not os.path.isdir(path):
        raise ModelSourceError(f"{source}: {path} is not a directory; point path: at a HF-format model directory")
    missing = []
    if not os.path.isfile(os.path.join(path, "config.json")):
        missing.append("config.json")
    weights = glob.glob(os.path.join(path, "*.safetensors")) + glob.glob(os.path.join(path, "*.bin"))
    if not weights:
        missing.append("weights (*.safetensors or *.bin)")
    if not any(os.path.isfile(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer.model")):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    if missing:
        raise ModelSourceError(f"{source}: {path} is missing {', '.join(missing)}; it is not a complete HF model")
    return sorted(os.listdir(path))


def _generated(ref: str, cache_dir: str, seed: int) -> tuple[str, bool]:
    from ansible_collections.llmops.platform.plugins.module_utils import tiny_llama

    dest = os.path.join(cache_dir, "generated", f"{ref}-v{tiny_llama.GENERATOR_VERSION}-seed{seed}")
    if os.path.isfile(os.path.join(dest, COMPLETE_MARKER)):
        return dest, False
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    # Build beside the destination and rename, so an interrupted run never leaves a half model.
    work = tempfile.mkdtemp(prefix=f".{ref}-", dir=os.path.dirname(dest))
    try:
        tiny_llama.write_tiny_llama(work, seed=seed)
        open(os.path.join(work, COMPLETE_MARKER), "w").close()
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
    return dest, True


def hf_cache_dir(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ if env is None else env)
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    home = env.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def find_in_hf_cache(repo: str, revision: str, hub_cache: str) -> str | None:
    """Look a repo up in the standard HF hub cache layout (models--org--name/snapshots/<sha>)."""
    base = os.path.join(hub_cache, "models--" + repo.replace("/", "--"))
    commit = revision if COMMIT_RE.match(revision) else None
    if commit is None:
        ref_file = os.path.join(base, "refs", revision)
        if os.path.isfile(ref_file):
            with open(ref_file, encoding="utf-8") as handle:
                commit = handle.read().strip()
    if commit and os.path.isdir(os.path.join(base, "snapshots", commit)):
        return os.path.join(base, "snapshots", commit)
    return None


def _hf(repo: str, revision: str, token: str | None, hub_cache: str, offline: bool) -> tuple[str, bool]:
    cached = find_in_hf_cache(repo, revision, hub_cache)
    if cached:
        return cached, False
    hint = (
        f"pre-load it into the HF cache at {hub_cache} (huggingface-cli download {repo} --revision {revision}), "
        "or copy it to a directory and use path:/that/dir"
    )
    if offline:
        raise ModelSourceError(f"hf:{repo}@{revision} is not in the HF cache and downloads are off (offline); {hint}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelSourceError(f"hf:{repo}: huggingface_hub is not installed on this host; {hint}") from None
    try:
        path = snapshot_download(repo_id=repo, revision=revision, token=token or None, cache_dir=hub_cache)
    except Exception as exc:  # the hub client raises many types; all mean "not downloadable"
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        auth = "" if token else " If the repo is gated, set HF_TOKEN (llm_hf_token)."
        raise ModelSourceError(f"hf:{repo}@{revision} could not be downloaded ({type(exc).__name__}: {reason})."
                               f"{auth} Or {hint}") from None
    return path, True


def resolve(source: str, cache_dir: str, hf_token: str | None = None, seed: int = 0,
            hf_hub_cache: str | None = None, offline: bool = False) -> dict[str, Any]:
    """Return {path, changed, files, scheme} for a model source, or raise ModelSourceError."""
    parsed = parse_source(source)
    scheme, ref = parsed["scheme"], parsed["ref"]
    if scheme == "generated":
        path, changed = _generated(ref, cache_dir, seed)
    elif scheme == "path":
        path, changed = ref, False
    else:
        path, changed = _hf(ref, parsed["revision"], hf_token, hf_hub_cache or hf_cache_dir(), offline)
    files = check_model_dir(path, source)
    return {"path": path, "changed": changed, "files": files, "scheme": scheme}
