"""Init step of every vLLM pod serving an hf: model or hf: LoRA adapters (mounted from a ConfigMap).

Makes sure <repo>@<revision> is complete in the shared Hugging Face cache on the model
PVC, and each hf: adapter in its own directory there (LLM_ADAPTERS, a JSON list of
{name, repo, revision, dir, marker}: the server's --lora-modules points at `dir`). A marker
written after a finished download makes every later start (restarts, more replicas,
rollouts) skip the network entirely. Replicas starting together are safe: huggingface_hub
locks each file while it downloads it.
"""
import json
import os
import pathlib
import sys


def mark(marker, path):
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(path + "\n", encoding="utf-8")
    os.replace(tmp, marker)


def fetch(what, marker, **kwargs):
    """Download once; returns False when the marker says it is already complete."""
    if marker.exists():
        print(f"{what}: complete in the cache, not downloading", flush=True)
        return False
    from huggingface_hub import snapshot_download  # only needed on a miss

    print(f"{what}: downloading into {kwargs.get('local_dir') or kwargs['cache_dir']}", flush=True)
    path = snapshot_download(token=os.environ.get("HF_TOKEN") or None, **kwargs)
    if kwargs.get("local_dir") and not os.path.isfile(os.path.join(path, "adapter_config.json")):
        sys.exit(f"{what} has no adapter_config.json: it is not a PEFT LoRA adapter; fix the adapter's "
                 "source in llm_models[].adapters")
    mark(marker, path)
    print(f"{what}: complete at {path}", flush=True)
    return True


if os.environ.get("LLM_MODEL_REPO"):
    repo, revision = os.environ["LLM_MODEL_REPO"], os.environ["LLM_MODEL_REVISION"]
    ignore = [p for p in os.environ.get("LLM_MODEL_IGNORE", "").split(",") if p]
    fetch(f"{repo}@{revision}", pathlib.Path(os.environ["LLM_MODEL_MARKER"]), repo_id=repo, revision=revision,
          cache_dir=os.environ["HF_HUB_CACHE"], ignore_patterns=ignore or None)

for adapter in json.loads(os.environ.get("LLM_ADAPTERS") or "[]"):
    fetch(f"adapter {adapter['name']} ({adapter['repo']}@{adapter['revision']})", pathlib.Path(adapter["marker"]),
          repo_id=adapter["repo"], revision=adapter["revision"], local_dir=adapter["dir"])
