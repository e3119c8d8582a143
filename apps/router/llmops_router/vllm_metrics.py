"""The few vLLM gauges the router routes on, from a replica's /metrics text.

prometheus_client's parser reads them; only their lines are handed to it, because parsing a
whole vLLM exposition (hundreds of histogram lines) would hold the event loop ~30x longer.
vLLM renamed its KV-cache gauge (gpu_cache_usage_perc / cpu_cache_usage_perc ->
kv_cache_usage_perc, 0.7+); both generations are accepted, the current name wins. Values are
summed over label sets (several engines in one server), cache usage is the max.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:cpu_cache_usage_perc")
_NAMES = (WAITING, RUNNING) + KV_USAGE
_LINES = _NAMES + tuple(f"# TYPE {name} " for name in _NAMES)


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
