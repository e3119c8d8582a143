"""The router's own Prometheus metrics (text exposition 0.0.4), no client library needed."""
from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Iterable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0, 120.0)


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return ",".join(f'{n}="{esc(v)}"' for n, v in zip(names, values))


class Counter:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...]):
        self.name, self.help, self.labels = name, help_, labels
        self.values: dict[tuple, float] = defaultdict(float)

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] += amount

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{{{_labels(self.labels, k)}}} {v}" for k, v in sorted(self.values.items())]
        return out


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


class RouterMetrics:
    def __init__(self) -> None:
        p = "llmops_router_"
        self.requests = Counter(p + "requests_total", "Requests by model and final HTTP status.",
                                ("model", "status"))
        self.choices = Counter(p + "replica_choices_total", "Requests sent to each replica (retries included).",
                               ("model", "replica"))
        self.errors = Counter(p + "upstream_errors_total", "Upstream failures by kind.",
                              ("model", "replica", "kind"))
        self.retries = Counter(p + "retries_total", "Requests retried on another replica.", ("model",))
        self.ttfb = Histogram(p + "upstream_first_byte_seconds",
                              "Time from sending upstream to the first body byte.", ("model", "replica"))
        self.duration = Histogram(p + "request_duration_seconds",
                                  "Whole request time as the client sees it.", ("model",))

    def render(self, replicas: list) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.choices, self.errors, self.retries, self.ttfb, self.duration):
            lines += metric.render()
        gauges = (
            ("replica_healthy", "1 if the replica passed /health and is not ejected.",
             lambda r: 1 if r.routable() else 0),
            ("replica_inflight", "Requests the router has in flight to the replica.", lambda r: r.inflight),
            ("replica_waiting", "Last scraped vllm:num_requests_waiting (-1: none).",
             lambda r: r.metrics.waiting if r.metrics else -1),
            ("replica_running", "Last scraped vllm:num_requests_running (-1: none).",
             lambda r: r.metrics.running if r.metrics else -1),
            ("replica_capacity", "Sequences the replica runs at once, configured or learned (-1: unknown).",
             lambda r: r.capacity(float("inf"), 0.0) or -1),
            ("replica_kv_cache_usage", "Last scraped KV-cache usage fraction (-1: none).",
             lambda r: r.metrics.kv_usage if r.metrics else -1),
        )
        for name, help_, get in gauges:
            lines += [f"# HELP llmops_router_{name} {help_}", f"# TYPE llmops_router_{name} gauge"]
            lines += [f"llmops_router_{name}{{{_labels(('model', 'replica'), (r.model, r.name))}}} {get(r)}"
                      for r in replicas]
        return "\n".join(lines) + "\n"
