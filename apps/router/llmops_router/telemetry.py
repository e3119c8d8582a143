"""The router's Prometheus metrics: the shared proxy series by model (and replica), retries
and choices, and per-replica gauges read from the routing state at scrape time."""
from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily

from llmops_common.metrics import ProxyMetrics

from .replicas import Replica

# name -> (help, value of a replica); names as the dashboards and alerts use them.
REPLICA_GAUGES: dict[str, tuple[str, Callable[[Replica], float]]] = {
    "replica_healthy": ("1 if the replica passed /health and is not ejected.", lambda r: 1 if r.routable() else 0),
    "replica_inflight": ("Requests the router has in flight to the replica.", lambda r: r.inflight),
    "replica_waiting": ("Last scraped vllm:num_requests_waiting (-1: none).",
                        lambda r: r.metrics.waiting if r.metrics else -1),
    "replica_running": ("Last scraped vllm:num_requests_running (-1: none).",
                        lambda r: r.metrics.running if r.metrics else -1),
    "replica_capacity": ("Sequences the replica runs at once, configured or learned (-1: unknown).",
                         lambda r: r.capacity(float("inf"), 0.0) or -1),
    "replica_kv_cache_usage": ("Last scraped KV-cache usage fraction (-1: none).",
                               lambda r: r.metrics.kv_usage if r.metrics else -1),
}


class _ReplicaGauges:
    """A prometheus_client collector over the router's replicas, read when scraped."""

    def __init__(self, replicas: Callable[[], Iterable[Replica]]) -> None:
        self.replicas = replicas

    def collect(self):
        replicas = list(self.replicas())
        for name, (help_, value) in REPLICA_GAUGES.items():
            family = GaugeMetricFamily(f"llmops_router_{name}", help_, labels=["model", "replica"])
            for replica in replicas:
                family.add_metric([replica.model, replica.name], float(value(replica)))
            yield family


class RouterMetrics(ProxyMetrics):
    def __init__(self, replicas: Callable[[], Iterable[Replica]]) -> None:
        super().__init__("llmops_router", "model", hop=("replica",))
        self.choices = self.counter("replica_choices_total", "Requests sent to each replica (retries included).",
                                    ("model", "replica"))
        self.retries = self.counter("retries_total", "Requests retried on another replica.", ("model",))
        self.registry.register(_ReplicaGauges(replicas))
