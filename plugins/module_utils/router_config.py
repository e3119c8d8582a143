"""Build the router's config file (apps/router) from `llm_router` and the normalised models.

Pure Python, no Ansible: the router role (local target) and the Kubernetes manifests render
the same document, and the tests call it directly. The router validates it again on start.
"""
from __future__ import annotations

from typing import Any

POLICIES = ("round_robin", "least_inflight", "queue_aware", "session_affinity", "prefix_aware")
# Keys of llm_router that go into the file as they are (apps/router/README.md documents them).
SETTINGS = ("policy", "poll_interval_s", "metrics_stale_s", "health_interval_s", "health_timeout_s",
            "eject_s", "max_retries", "connect_timeout_s", "upstream_timeout_s", "wait_weight",
            "kv_weight", "assumed_capacity", "capacity_ttl_s", "session_header", "affinity_max_imbalance",
            "prefix_block_chars", "prefix_max_blocks", "prefix_max_entries", "prefix_ttl_s", "prefix_weight",
            "prefix_max_imbalance")
DEFAULTS = {"policy": "queue_aware", "poll_interval_s": 1}


class RouterConfigError(ValueError):
    pass


def _replica_entry(replica: dict[str, Any]) -> dict[str, Any]:
    entry = {"name": replica["name"], "url": replica["base_url"]}
    # queue_aware prices a request beyond a replica's batch size as queued (apps/router).
    slots = (replica.get("vllm_args") or {}).get("max_num_seqs")
    if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0:
        entry["max_num_seqs"] = slots
    return entry


def build_router_config(models: list[dict[str, Any]], settings: dict[str, Any] | None,
                        replicas: list[dict[str, Any]], host: str, port: int) -> dict[str, Any]:
    """`replicas` are expand_replicas() records (name, model, base_url) or the same shape
    with in-cluster URLs. Models with no replica stay listed, so they answer 503, not 404."""
    merged = {**DEFAULTS, **(settings or {})}
    unknown = sorted(set(merged) - set(SETTINGS) - {"per_model_policy"})
    if unknown:
        raise RouterConfigError(f"llm_router.{unknown[0]}: unknown key; "
                                f"allowed: {', '.join(SETTINGS)}, per_model_policy")
    per_model = merged.pop("per_model_policy", None) or {}
    for where, policy in [("llm_router.policy", merged["policy"])] + [
            (f"llm_router.per_model_policy.{k}", v) for k, v in per_model.items()]:
        if policy not in POLICIES:
            raise RouterConfigError(f"{where}: {policy!r} is not a policy; use one of {', '.join(POLICIES)}")
    names = [m["name"] for m in models]
    for name in per_model:
        if name not in names:
            raise RouterConfigError(f"llm_router.per_model_policy.{name}: no such model in llm_models")
    poll = merged["poll_interval_s"]
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or poll < 0.05:
        raise RouterConfigError(f"llm_router.poll_interval_s: must be a number >= 0.05, got {poll!r}")
    out_models = []
    for name in names:
        entry: dict[str, Any] = {"name": name, "replicas": [
            _replica_entry(r) for r in replicas if r["model"] == name]}
        if name in per_model:
            entry["policy"] = per_model[name]
        out_models.append(entry)
    return {"host": host, "port": int(port), **merged, "models": out_models}
