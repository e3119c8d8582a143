"""Resolve a model source (generated:, path:, hf:) to a local Hugging Face model directory,
and a LoRA adapter source (path:, hf:) to a local PEFT adapter directory.

All three schemes end in the same `check_model_dir`, so a generated tiny model is
validated exactly like a downloaded one; servers are only started on a directory that
passed it. Adapters end in `check_adapter_dir` the same way. Resolution happens before any
server starts, so a missing model or adapter fails early.
"""
from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.files import replace_dir
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


def adapter_rank(config: dict[str, Any]) -> int:
    """The largest LoRA rank of a PEFT adapter_config.json: `r`, or a larger per-module
    `rank_pattern` entry (what vLLM must hold: its --max-lora-rank)."""
    ranks = [config.get("r")] + list((config.get("rank_pattern") or {}).values())
    ranks = [r for r in ranks if isinstance(r, int) and not isinstance(r, bool) and r > 0]
    if not ranks:
        raise ValueError("no LoRA rank r")
    return max(ranks)


def check_adapter_dir(path: str, source: str) -> dict[str, Any]:
    """Fail unless `path` holds a PEFT LoRA adapter vLLM can load: adapter_config.json (peft_type
    LORA, a rank r) and adapter weights. Returns {files, rank, base_model}."""
    if not os.path.isdir(path):
        raise ModelSourceError(f"{source}: {path} is not a directory; point path: at a PEFT adapter directory "
                               "(the one holding adapter_config.json)")
    config_path = os.path.join(path, "adapter_config.json")
    if not os.path.isfile(config_path):
        hint = (" (it holds config.json: a full model, serve it as an llm_models entry)"
                if os.path.isfile(os.path.join(path, "config.json")) else "")
        raise ModelSourceError(f"{source}: {path} has no adapter_config.json{hint}; point it at the directory "
                               "a PEFT LoRA adapter was saved to (save_pretrained)")
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        rank = adapter_rank(config)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{source}: {config_path} is not a LoRA adapter config ({exc}); "
                               "it needs at least peft_type LORA and r") from None
    peft_type = str(config.get("peft_type") or "LORA").upper()
    if peft_type != "LORA":
        raise ModelSourceError(f"{source}: {config_path} has peft_type {peft_type}; vLLM serves LoRA adapters only")
    weights = [f for f in ("adapter_model.safetensors", "adapter_model.bin")
               if os.path.isfile(os.path.join(path, f))]
    if not weights:
        raise ModelSourceError(f"{source}: {path} is missing adapter_model.safetensors (or adapter_model.bin); "
                               "it is not a complete adapter")
    return {"files": sorted(os.listdir(path)), "rank": rank,
            "base_model": str(config.get("base_model_name_or_path") or "")}


def _generated(ref: str, cache_dir: str, seed: int) -> tuple[str, bool]:
    from ansible_collections.llmops.platform.plugins.module_utils import tiny_llama

    dest = os.path.join(cache_dir, "generated", f"{ref}-v{tiny_llama.GENERATOR_VERSION}-seed{seed}")
    if os.path.isfile(os.path.join(dest, COMPLETE_MARKER)):
        return dest, False
    # Build beside the destination and rename, so an interrupted run never leaves a half model.
    with replace_dir(dest, prefix=f".{ref}-") as work:
        tiny_llama.write_tiny_llama(work, seed=seed)
        open(os.path.join(work, COMPLETE_MARKER), "w").close()
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


def resolve_adapter(source: str, hf_token: str | None = None, hf_hub_cache: str | None = None,
                    offline: bool = False, field: str = "") -> dict[str, Any]:
    """Return {path, changed, files, scheme, rank, base_model} for a LoRA adapter source
    (path: or hf:, downloaded like a model), or raise ModelSourceError naming `field`."""
    where = f"{field}: " if field else ""
    parsed = parse_source(source, field or "source")
    scheme, ref = parsed["scheme"], parsed["ref"]
    if scheme == "generated":
        raise ModelSourceError(f"{where}{source} is a base model, not an adapter; use path:/abs/dir or "
                               "hf:<org>/<repo>[@revision]")
    try:
        if scheme == "path":
            path, changed = ref, False
        else:
            path, changed = _hf(ref, parsed["revision"], hf_token, hf_hub_cache or hf_cache_dir(), offline)
        found = check_adapter_dir(path, source)
    except ModelSourceError as exc:
        raise ModelSourceError(f"{where}{exc}") from None
    return {"path": path, "changed": changed, "scheme": scheme, **found}


def resolve_adapters(model: dict[str, Any], hf_token: str | None = None, hf_hub_cache: str | None = None,
                     offline: bool = False) -> dict[str, dict[str, Any]]:
    """{adapter name: {path, rank}} of a normalised llm_models entry's adapters (what
    vllm_server.local_server takes as `adapters`), each resolved by resolve_adapter."""
    out = {}
    for index, adapter in enumerate(model.get("adapters") or []):
        found = resolve_adapter(adapter["source"], hf_token, hf_hub_cache, offline,
                                f"llm_models[{model['name']}].adapters[{index}].source")
        out[adapter["name"]] = {"path": found["path"], "rank": found["rank"]}
    return out


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
