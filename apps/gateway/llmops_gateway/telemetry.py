"""The gateway's Prometheus metrics: the shared proxy series by route, refusals, in-flight."""
from __future__ import annotations

from llmops_common.metrics import ProxyMetrics


class GatewayMetrics(ProxyMetrics):
    def __init__(self) -> None:
        super().__init__("llmops_gateway", "route")
        self.auth_failures = self.counter("auth_failures_total", "Requests refused for a missing or wrong API key.",
                                          ("route",))
        self.limited = self.counter("rate_limited_total", "Requests refused by the per-client in-flight limit.",
                                    ("route",))
        self.inflight = self.gauge("inflight_requests", "Requests the gateway is serving now.")
