"""Init step of every vLLM pod serving an hf: model (mounted from a ConfigMap).

Makes sure <repo>@<revision> is complete in the shared Hugging Face cache on the model
PVC. A marker written after a finished download makes every later start (restarts, more
replicas, rollouts) skip the network entirely. Replicas starting together are safe:
huggingface_hub locks each file in the cache while it downloads it.
"""
import os
import pathlib
import sys

repo = os.environ["LLM_MODEL_REPO"]
revision = os.environ["LLM_MODEL_REVISION"]
marker = pathlib.Path(os.environ["LLM_MODEL_MARKER"])

if marker.exists():
    print(f"{repo}@{revision}: complete in the cache, not downloading", flush=True)
    sys.exit(0)

from huggingface_hub import snapshot_download  # noqa: E402  (only needed on a miss)

ignore = [p for p in os.environ.get("LLM_MODEL_IGNORE", "").split(",") if p]
print(f"{repo}@{revision}: downloading into {os.environ['HF_HUB_CACHE']}", flush=True)
path = snapshot_download(
    repo_id=repo,
    revision=revision,
    cache_dir=os.environ["HF_HUB_CACHE"],
    token=os.environ.get("HF_TOKEN") or None,
    ignore_patterns=ignore or None,
)
marker.parent.mkdir(parents=True, exist_ok=True)
tmp = marker.with_name(marker.name + ".tmp")
tmp.write_text(path + "\n", encoding="utf-8")
os.replace(tmp, marker)
print(f"{repo}@{revision}: complete at {path}", flush=True)
