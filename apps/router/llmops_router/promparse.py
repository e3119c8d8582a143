"""Read the few vLLM gauges the router routes on from Prometheus text exposition.

vLLM renamed its KV-cache gauge (gpu_cache_usage_perc / cpu_cache_usage_perc ->
kv_cache_usage_perc, 0.7+); both generations are accepted, the current name wins.
Values are summed over label sets (several engines in one server), cache usage is the max.
"""
from __future__ import annotations

from dataclasses import dataclass

WAITING = ("vllm:num_requests_waiting",)
RUNNING = ("vllm:num_requests_running",)
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:cpu_cache_usage_perc")
_WANTED = set(WAITING + RUNNING + KV_USAGE)


@dataclass(frozen=True)
class QueueMetrics:
    waiting: float
    running: float
    kv_usage: float  # fraction 0..1


def _sample(line: str) -> tuple[str, float] | None:
    # `name{labels} value [timestamp]`; label values may contain spaces, so split after '}'.
    if "{" in line:
        name, _, rest = line.partition("{")
        _, _, rest = rest.rpartition("}")
    else:
        name, _, rest = line.partition(" ")
    parts = rest.split()
    if not parts:
        return None
    try:
        return name.strip(), float(parts[0])
    except ValueError:
        return None


def parse_queue_metrics(text: str) -> QueueMetrics | None:
    """None when the text has no queue gauges at all (not a vLLM server, or not ready)."""
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        sample = _sample(line)
        if sample and sample[0] in _WANTED and sample[1] == sample[1]:  # drop NaN
            found.setdefault(sample[0], []).append(sample[1])
    if not any(name in found for name in WAITING + RUNNING):
        return None
    kv = 0.0
    for name in KV_USAGE:
        if name in found:
            kv = max(found[name])
            break
    if kv > 1.0:  # some builds export percent, not a fraction
        kv /= 100.0
    return QueueMetrics(
        waiting=sum(sum(found.get(n, [])) for n in WAITING),
        running=sum(sum(found.get(n, [])) for n in RUNNING),
        kv_usage=max(0.0, min(kv, 1.0)),
    )
