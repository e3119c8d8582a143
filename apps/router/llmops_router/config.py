"""Router configuration: a JSON (or YAML) file rendered by the `router` role.

Validation errors name the field and the fix, like the inventory checks do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops_common.config import ConfigError, base_url, number, read_config

__all__ = ["AdapterConfig", "ConfigError", "RouterConfig", "load_config", "parse_config"]
POLICIES = ("round_robin", "least_inflight", "queue_aware", "session_affinity", "prefix_aware")


@dataclass(frozen=True)
class ReplicaConfig:
    name: str
    url: str  # base URL, e.g. http://127.0.0.1:8100 (no trailing slash)
    max_num_seqs: int | None = None  # the replica's vLLM max_num_seqs, when the deployer knows it


@dataclass(frozen=True)
class AdapterConfig:
    """A LoRA adapter the model's replicas serve (vLLM --lora-modules): requests naming it go
    to the model's replicas, body unchanged."""
    name: str
    policy: str | None = None  # else the model's policy, else the router-wide one


@dataclass(frozen=True)
class ModelConfig:
    name: str
    replicas: tuple[ReplicaConfig, ...]
    policy: str | None = None  # overrides the router-wide policy for this model
    # {type: dns, host, port, scheme}: replicas are the addresses `host` resolves to (a
    # Kubernetes headless Service answers one per ready pod); re-resolved every health round.
    discovery: dict[str, Any] | None = None
    # Capacity of replicas found by discovery (one Deployment: all alike).
    max_num_seqs: int | None = None
    adapters: tuple[AdapterConfig, ...] = ()


@dataclass(frozen=True)
class RouterConfig:
    models: tuple[ModelConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    policy: str = "queue_aware"
    poll_interval_s: float = 1.0
    # Scraped metrics older than this are ignored (the replica falls back to in-flight counts).
    metrics_stale_s: float = 3.0
    health_interval_s: float = 2.0
    health_timeout_s: float = 2.0
    # A replica that failed a connection is skipped this long, then needs a passing /health.
    eject_s: float = 10.0
    # Other replicas tried after the first one failed before anything reached the client.
    max_retries: int = 2
    connect_timeout_s: float = 5.0
    # Time until upstream response headers; streaming bodies are not time-limited.
    upstream_timeout_s: float = 600.0
    # queue_aware cost = wait_weight * queued / capacity + (present + 1) / capacity + kv_weight * kv_usage
    # (policies.Chooser.price): a generation of waiting costs wait_weight, a full batch costs 1.
    wait_weight: float = 2.0
    kv_weight: float = 4.0
    # Batch size assumed for a replica whose capacity is neither configured nor yet learned
    # (vLLM's default max_num_seqs on GPUs).
    assumed_capacity: float = 256.0
    # A capacity learned from a saturated scrape holds this long, then the configured one again.
    capacity_ttl_s: float = 60.0
    session_header: str = "x-session-id"
    # session_affinity leaves its replica when that replica's queue_aware cost exceeds the least
    # loaded replica's by more than this (two generations of waiting at the default wait_weight).
    affinity_max_imbalance: float = 4.0
    # prefix_aware (policies.Chooser.order, prefix.py): prompts are hashed in blocks of
    # prefix_block_chars characters (the first prefix_max_blocks of them); the router remembers
    # at most prefix_max_entries block hashes, each for prefix_ttl_s after it was last sent.
    prefix_block_chars: int = 128
    prefix_max_blocks: int = 256
    prefix_max_entries: int = 100_000
    prefix_ttl_s: float = 300.0
    # A replica holding the whole prompt costs prefix_weight less (queue_aware units; a part of
    # the prompt: that fraction of it) ...
    prefix_weight: float = 3.0
    # ... unless its queue_aware cost exceeds the least loaded replica's by more than this
    # (one generation of waiting at the default wait_weight): then it gets no affinity at all.
    prefix_max_imbalance: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)

    def policy_for(self, model: str) -> str:
        """The policy of a model or adapter name: its own, an adapter's model's, the router's."""
        for entry in self.models:
            if entry.name == model:
                return entry.policy or self.policy
            for adapter in entry.adapters:
                if adapter.name == model:
                    return adapter.policy or entry.policy or self.policy
        return self.policy


def _slots(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: the replica's vLLM max_num_seqs, an integer >= 1 (or leave it out), got {value!r}")
    return value


def _policy(value: Any, where: str) -> str:
    if value not in POLICIES:
        raise ConfigError(f"{where}: unknown policy {value!r}; use one of {', '.join(POLICIES)}")
    return value


def _integer(raw: dict[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: must be an integer >= 1, got {value!r}")
    return value


def _discovery(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "dns":
        raise ConfigError(f"{where}: must be {{type: dns, host: NAME, port: PORT}}")
    if not isinstance(raw.get("host"), str) or not raw["host"]:
        raise ConfigError(f"{where}.host: the DNS name to resolve, e.g. chat-replicas.ns.svc.cluster.local")
    port = raw.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.port: must be a port number, got {port!r}")
    scheme = raw.get("scheme", "http")
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}.scheme: http or https, got {scheme!r}")
    return {"host": raw["host"], "port": port, "scheme": scheme}


def _adapters(raw: Any, where: str, seen: set[str]) -> tuple[AdapterConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of {{name, policy?}} (the model's LoRA adapters)")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ConfigError(f"{where}[{i}].name: every adapter needs a name")
        if entry["name"] in seen:
            raise ConfigError(f"{where}[{i}].name: {entry['name']!r} is already a model or adapter name")
        seen.add(entry["name"])
        policy = entry.get("policy")
        out.append(AdapterConfig(entry["name"], _policy(policy, f"{where}[{i}].policy") if policy else None))
    return tuple(out)


def parse_config(raw: dict[str, Any]) -> RouterConfig:
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a mapping with a `models` list")
    models_raw = raw.get("models")
    if not isinstance(models_raw, list):
        raise ConfigError("models: must be a list of {name, replicas: [{name, url}]}")
    models = []
    seen: set[str] = set()
    for i, entry in enumerate(models_raw):
        where = f"models[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ConfigError(f"{where}.name: every model needs a name")
        if entry["name"] in seen:
            raise ConfigError(f"{where}.name: duplicate model {entry['name']!r}")
        seen.add(entry["name"])
    adapter_names = set(seen)
    for i, entry in enumerate(models_raw):
        where = f"models[{i}]"
        replicas = []
        for j, rep in enumerate(entry.get("replicas") or []):
            url = base_url(rep.get("url") if isinstance(rep, dict) else None, f"{where}.replicas[{j}].url")
            replicas.append(ReplicaConfig(name=str(rep.get("name") or url), url=url,
                                          max_num_seqs=_slots(rep.get("max_num_seqs"),
                                                              f"{where}.replicas[{j}].max_num_seqs")))
        policy = entry.get("policy")
        models.append(ModelConfig(entry["name"], tuple(replicas),
                                  _policy(policy, f"{where}.policy") if policy else None,
                                  _discovery(entry.get("discovery"), f"{where}.discovery"),
                                  _slots(entry.get("max_num_seqs"), f"{where}.max_num_seqs"),
                                  _adapters(entry.get("adapters"), f"{where}.adapters", adapter_names)))
    poll = number(raw, "poll_interval_s", 1.0, 0.05)
    known = {f for f in RouterConfig.__dataclass_fields__} - {"models", "extra"}
    return RouterConfig(
        models=tuple(models),
        host=str(raw.get("host", "127.0.0.1")),
        port=number(raw, "port", 8000, 0, int),
        policy=_policy(raw.get("policy", "queue_aware"), "policy"),
        poll_interval_s=poll,
        metrics_stale_s=number(raw, "metrics_stale_s", 3 * poll, poll),
        health_interval_s=number(raw, "health_interval_s", 2.0, 0.05),
        health_timeout_s=number(raw, "health_timeout_s", 2.0, 0.05),
        eject_s=number(raw, "eject_s", 10.0, 0),
        max_retries=number(raw, "max_retries", 2, 0, int),
        connect_timeout_s=number(raw, "connect_timeout_s", 5.0, 0.05),
        upstream_timeout_s=number(raw, "upstream_timeout_s", 600.0, 0.1),
        wait_weight=number(raw, "wait_weight", 2.0, 0),
        kv_weight=number(raw, "kv_weight", 4.0, 0),
        assumed_capacity=number(raw, "assumed_capacity", 256.0, 1),
        capacity_ttl_s=number(raw, "capacity_ttl_s", 60.0, 0),
        session_header=str(raw.get("session_header", "x-session-id")).lower(),
        affinity_max_imbalance=number(raw, "affinity_max_imbalance", 4.0, 0),
        prefix_block_chars=_integer(raw, "prefix_block_chars", 128),
        prefix_max_blocks=_integer(raw, "prefix_max_blocks", 256),
        prefix_max_entries=_integer(raw, "prefix_max_entries", 100_000),
        prefix_ttl_s=number(raw, "prefix_ttl_s", 300.0, 0.001),
        prefix_weight=number(raw, "prefix_weight", 3.0, 0),
        prefix_max_imbalance=number(raw, "prefix_max_imbalance", 2.0, 0),
        extra={k: v for k, v in raw.items() if k not in known and k != "models"},
    )


def load_config(path: str) -> RouterConfig:
    return parse_config(read_config(path))
