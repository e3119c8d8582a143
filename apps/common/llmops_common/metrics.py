"""Prometheus metrics with prometheus_client: one registry per app instance (tests run several
in one process), exposed in the text format 0.0.4 that every Prometheus reads."""
from __future__ import annotations

from typing import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# The _created series would double every counter and histogram for nothing a dashboard reads.
disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a fast proxy hop (1 ms) to a long generation (5 min).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)


class ProxyMetrics:
    """What every llmops proxy counts, as `<prefix>_...`: requests and their duration by `key`
    (router: model, gateway: route), time to the upstream's first byte and upstream errors by
    `key` plus `hop` (router: replica). Apps add their own with counter() and gauge()."""

    def __init__(self, prefix: str, key: str, hop: Sequence[str] = ()) -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = self.counter("requests_total", f"Requests by {key} and final HTTP status.", (key, "status"))
        self.duration = self.histogram("request_duration_seconds", "Whole request time as the client sees it.",
                                       (key,))
        self.first_byte = self.histogram("upstream_first_byte_seconds",
                                         "Request sent upstream to its first body byte (TTFT for streams).",
                                         (key, *hop))
        self.errors = self.counter("upstream_errors_total", "Upstream failures by kind.", (key, *hop, "kind"))

    def counter(self, name: str, help_: str, labels: Sequence[str]) -> Counter:
        return Counter(f"{self.prefix}_{name}", help_, labels, registry=self.registry)

    def histogram(self, name: str, help_: str, labels: Sequence[str]) -> Histogram:
        return Histogram(f"{self.prefix}_{name}", help_, labels, buckets=LATENCY_BUCKETS, registry=self.registry)

    def gauge(self, name: str, help_: str) -> Gauge:
        return Gauge(f"{self.prefix}_{name}", help_, registry=self.registry)

    def finished(self, key: str, status: int, seconds: float) -> None:
        self.requests.labels(key, str(status)).inc()
        self.duration.labels(key).observe(seconds)

    def response(self) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})
