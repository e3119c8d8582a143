"""Server series for a run's window from Prometheus: every replica, at its scrape resolution.

The engine samples one server's /metrics (the base URL's) during a run. Behind a router, or
on Kubernetes through a Service, that is one replica or no vLLM at all. With a Prometheus URL
the report takes requests running/waiting and KV-cache use per replica from Prometheus for the
run's window instead; a Prometheus that does not answer is recorded (the report says so and
falls back to the engine's own samples), never fatal to the run.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from ..monitoring.prometheus_api import PrometheusError, query, query_range

# Both vLLM generations of the KV-cache gauge (renamed in the V1 engine).
KV_NAMES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
MAX_POINTS = 300  # per series: a query step of at least 1 s, coarser for long runs
FRESH_WAIT_S = 20.0  # how long to wait for a scrape newer than the run's end


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def queries(model: str) -> Dict[str, str]:
    """PromQL per series kind, per replica (the `pod` label, as both targets' scrape configs set)."""
    sel = f'{{model_name="{_label_value(model)}"}}'
    kv = " or ".join(f"{name}{sel}" for name in KV_NAMES)
    return {
        "running": f"sum by (pod, instance) (vllm:num_requests_running{sel})",
        "waiting": f"sum by (pod, instance) (vllm:num_requests_waiting{sel})",
        "kv_cache": f"max by (pod, instance) ({kv})",
    }


def wait_for_fresh(url: str, model: str, end: float, wait_s: float = FRESH_WAIT_S,
                   sleep: Callable[[float], None] = time.sleep) -> bool:
    """True once every replica's newest running-requests sample is at or after `end` (the
    last scrape of the run has landed); False when `wait_s` passed first."""
    expr = f'timestamp(vllm:num_requests_running{{model_name="{_label_value(model)}"}})'
    deadline = time.time() + wait_s
    while True:
        stamps = [value for _labels, value in query(url, expr)]
        if stamps and min(stamps) >= end:
            return True
        if time.time() >= deadline:
            return False
        sleep(0.5)


def collect(url: str, model: str, start: float, end: float, wait_s: float = FRESH_WAIT_S) -> Dict[str, Any]:
    """{"url", "start", "end", "step_s", "series": {kind: [{"name", "points": [[t_s, v]]}]},
    "fresh", "error"}; times in seconds since `start` (the report's axis)."""
    out: Dict[str, Any] = {"url": url, "start": start, "end": end, "series": {}, "error": None}
    step = max(1.0, (end - start) / MAX_POINTS)
    out["step_s"] = step
    try:
        out["fresh"] = wait_for_fresh(url, model, end, wait_s)
        for kind, expr in queries(model).items():
            rows: List[Dict[str, Any]] = []
            for series in query_range(url, expr, start, end, step, "{{pod}}"):
                rows.append({"name": series.name or series.labels.get("instance", "?"),
                             "points": [[round(t - start, 3), v] for t, v in series.points]})
            out["series"][kind] = rows
    except PrometheusError as exc:
        out["error"] = str(exc)
    return out


def replicas(prometheus: Optional[Dict[str, Any]]) -> List[str]:
    """The replicas Prometheus had series for (names, sorted)."""
    series = (prometheus or {}).get("series") or {}
    return sorted({row["name"] for rows in series.values() for row in rows if row["points"]})
