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


def model_routes(models: list[dict[str, Any]], per_model_policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per model: its name, its own policy (llm_router.per_model_policy) and its LoRA adapters
    (llm_models[].adapters), each routed to the model's replicas with the request unchanged;
    an adapter takes its own per_model_policy entry, else the model's (the router inherits)."""
    per_model = per_model_policy or {}
    if not isinstance(per_model, dict):
        raise RouterConfigError("llm_router.per_model_policy: must be a mapping {model or adapter name: policy}")
    served = {m["name"] for m in models} | {a["name"] for m in models for a in m.get("adapters") or []}
    for name, policy in per_model.items():
        if policy not in POLICIES:
            raise RouterConfigError(f"llm_router.per_model_policy.{name}: {policy!r} is not a policy; "
                                    f"use one of {', '.join(POLICIES)}")
        if name not in served:
            raise RouterConfigError(f"llm_router.per_model_policy.{name}: no such model or adapter in llm_models")
    routes = []
    for model in models:
        entry: dict[str, Any] = {"name": model["name"]}
        if model["name"] in per_model:
            entry["policy"] = per_model[model["name"]]
        adapters = []
        for adapter in model.get("adapters") or []:
            route = {"name": adapter["name"]}
            if adapter["name"] in per_model:
                route["policy"] = per_model[adapter["name"]]
            adapters.append(route)
        if adapters:
            entry["adapters"] = adapters
        routes.append(entry)
    return routes


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
    if merged["policy"] not in POLICIES:
        raise RouterConfigError(f"llm_router.policy: {merged['policy']!r} is not a policy; "
                                f"use one of {', '.join(POLICIES)}")
    routes = model_routes(models, per_model)
    poll = merged["poll_interval_s"]
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or poll < 0.05:
        raise RouterConfigError(f"llm_router.poll_interval_s: must be a number >= 0.05, got {poll!r}")
    out_models = []
    for route in routes:
        name = route["name"]
        entry: dict[str, Any] = {"name": name, "replicas": [
            _replica_entry(r) for r in replicas if r["model"] == name]}
        entry.update({k: v for k, v in route.items() if k != "name"})
        out_models.append(entry)
    return {"host": host, "port": int(port), **merged, "models": out_models}
