"""The few vLLM gauges the router routes on, from a replica's /metrics text.

prometheus_client's parser reads them; only their lines are handed to it, because parsing a
whole vLLM exposition (hundreds of histogram lines) would hold the event loop ~30x longer.
vLLM renamed its KV-cache gauge (gpu_cache_usage_perc / cpu_cache_usage_perc ->
kv_cache_usage_perc, 0.7+); both generations are accepted, the current name wins. Values are
summed over label sets (several engines in one server), cache usage is the max.

Prefix-cache counters (read by bench/prefix_routing.py; the router itself routes on what it
sent, prefix.py): `vllm:prefix_cache_queries` / `vllm:prefix_cache_hits` (tokens, counters,
exposed with _total; vLLM >= 0.8, V1 engine), earlier V1 releases'
`vllm:gpu_prefix_cache_queries` / `vllm:gpu_prefix_cache_hits`, and the V0 engine's
`vllm:gpu_prefix_cache_hit_rate` gauge (a ratio since start, no counts).
roles/monitoring/files/metric_names.yml lists the same names.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:cpu_cache_usage_perc")
_NAMES = (WAITING, RUNNING) + KV_USAGE
_LINES = _NAMES + tuple(f"# TYPE {name} " for name in _NAMES)


PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_HIT_RATE = "vllm:gpu_prefix_cache_hit_rate"
_PREFIX_NAMES = PREFIX_QUERIES + PREFIX_HITS + (PREFIX_HIT_RATE,)


@dataclass(frozen=True)
class PrefixCacheMetrics:
    queries: float | None  # prompt tokens looked up in the prefix cache, since start
    hits: float | None  # of those, found cached
    hit_rate: float | None  # hits / queries since start (V0: the gauge), None when no queries


@dataclass(frozen=True)
class QueueMetrics:
    waiting: float
    running: float
    kv_usage: float  # fraction 0..1


def _samples(text: str) -> dict[str, list[float]]:
    wanted = "\n".join(line for line in text.splitlines() if line.startswith(_LINES))
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            if sample.name in _NAMES and sample.value == sample.value:  # drop NaN
                found.setdefault(sample.name, []).append(sample.value)
    return found


def parse_queue_metrics(text: str) -> QueueMetrics | None:
    """None when the text has no queue gauges (not a vLLM server, or not ready) or they are
    malformed."""
    try:
        found = _samples(text)
    except ValueError:
        return None
    if WAITING not in found and RUNNING not in found:
        return None
    kv = next((max(found[name]) for name in KV_USAGE if name in found), 0.0)
    if kv > 1.0:  # some builds export percent, not a fraction
        kv /= 100.0
    return QueueMetrics(waiting=sum(found.get(WAITING, [])), running=sum(found.get(RUNNING, [])),
                        kv_usage=max(0.0, min(kv, 1.0)))


def parse_prefix_cache(text: str) -> PrefixCacheMetrics | None:
    """Either counter generation (the current one wins), else the V0 gauge; None: neither."""
    bases = tuple(name.removesuffix("_total") for name in _PREFIX_NAMES)
    wanted = "\n".join(line for line in text.splitlines()
                       if line.startswith(bases + tuple(f"# TYPE {b} " for b in bases)))
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(wanted):
            for sample in family.samples:
                if sample.name == PREFIX_HIT_RATE and sample.value == sample.value:  # a ratio: not summed
                    found[sample.name] = max(found.get(sample.name, 0.0), sample.value)
                elif sample.name in _PREFIX_NAMES and sample.value == sample.value:
                    found[sample.name] = found.get(sample.name, 0.0) + sample.value
    except ValueError:
        return None
    for queries_name, hits_name in zip(PREFIX_QUERIES, PREFIX_HITS):
        if queries_name in found:
            queries, hits = found[queries_name], found.get(hits_name, 0.0)
            return PrefixCacheMetrics(queries, hits, hits / queries if queries > 0 else None)
    if PREFIX_HIT_RATE in found:
        return PrefixCacheMetrics(None, None, found[PREFIX_HIT_RATE])
    return None
