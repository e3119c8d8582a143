"""The gateway's Prometheus metrics (text exposition 0.0.4), no client library needed
(prometheus_client is not in the control venv; same format as apps/router's telemetry)."""
from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Iterable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return ",".join(f'{n}="{esc(v)}"' for n, v in zip(names, values))


class Counter:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...]):
        self.name, self.help, self.labels = name, help_, labels
        self.values: dict[tuple, float] = defaultdict(float)

    def inc(self, *label_values: str) -> None:
        self.values[label_values] += 1

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        return out + [f"{self.name}{{{_labels(self.labels, k)}}} {v}" for k, v in sorted(self.values.items())]


class Histogram:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...], buckets=LATENCY_BUCKETS):
        self.name, self.help, self.labels, self.buckets = name, help_, labels, buckets
        self.counts: dict[tuple, list[int]] = {}
        self.sums: dict[tuple, float] = defaultdict(float)

    def observe(self, value: float, *label_values: str) -> None:
        counts = self.counts.setdefault(label_values, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[label_values] += value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self.counts.items()):
            base = _labels(self.labels, key)
            total = 0
            for bound, n in zip(self.buckets + (float("inf"),), counts):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'{self.name}_bucket{{{base},le="{le}"}} {total}')
            out.append(f"{self.name}_sum{{{base}}} {self.sums[key]}")
            out.append(f"{self.name}_count{{{base}}} {total}")
        return out


class GatewayMetrics:
    def __init__(self) -> None:
        p = "llmops_gateway_"
        self.requests = Counter(p + "requests_total", "Requests by route and final HTTP status.", ("route", "status"))
        self.errors = Counter(p + "upstream_errors_total",
                              "Upstream failures: connect, timeout, midstream.", ("route", "kind"))
        self.auth_failures = Counter(p + "auth_failures_total", "Requests refused for a missing or wrong API key.",
                                     ("route",))
        self.limited = Counter(p + "rate_limited_total", "Requests refused by the per-client in-flight limit.",
                               ("route",))
        self.first_byte = Histogram(p + "upstream_first_byte_seconds",
                                    "Request start to the upstream's first body byte (TTFT for streams).", ("route",))
        self.duration = Histogram(p + "request_duration_seconds", "Whole request time as the client sees it.",
                                  ("route",))
        self.inflight = 0

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.errors, self.auth_failures, self.limited, self.first_byte, self.duration):
            lines += metric.render()
        lines += ["# HELP llmops_gateway_inflight_requests Requests the gateway is serving now.",
                  "# TYPE llmops_gateway_inflight_requests gauge",
                  f"llmops_gateway_inflight_requests {self.inflight}"]
        return "\n".join(lines) + "\n"
