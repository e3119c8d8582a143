"""Benchmark one running server at every (scenario, concurrency) point of the task.

One server per configuration is reused for all client-side settings; warm-up requests go
to the first point only and are excluded from every statistic (the engine drops them).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.bench import client, metrics
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig

from .objectives import point_metrics
from .task import Task


def bench_configs(task: Task, base_url: str, served: str,
                  request_timeout_s: float) -> list[tuple[dict[str, Any], BenchConfig]]:
    points = []
    for s_index, scenario in enumerate(task.scenarios):
        for c_index, conc in enumerate(task.concurrency):
            first = s_index == 0 and c_index == 0
            cfg = BenchConfig(
                base_url=base_url, model=served, endpoint=task.endpoint,
                num_requests=task.num_requests, concurrency=conc,
                warmup_requests=task.warmup_requests if first else 0,
                prompt_tokens=scenario.prompt_tokens, max_tokens=scenario.output_tokens,
                seed=task.seed, request_timeout_s=request_timeout_s,
                additional_params=dict(task.additional_params))
            points.append(({"scenario": scenario.text, "concurrency": conc}, cfg))
    return points


def measure(task: Task, base_url: str, served: str, deadline: float,
            request_timeout_s: float = 60.0) -> tuple[list[dict[str, Any]], float, float]:
    """Returns (point metrics, warm-up seconds, measured seconds). Stops at the deadline."""
    out: list[dict[str, Any]] = []
    warmup_s = measured_s = 0.0
    for label, cfg in bench_configs(task, base_url, served, request_timeout_s):
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            raise TimeoutError(f"trial time budget spent before point {label}")
        cfg = dataclasses.replace(cfg, run_timeout_s=remaining)
        began = time.time()
        result = client.run(cfg)
        warmup_s += max(0.0, result.started_wall - began)
        measured_s += max(0.0, result.ended_wall - result.started_wall)
        summary = metrics.summarize(result)
        out.append({**label, **point_metrics(result.records, summary, task.slo)})
        if result.stopped_reason:
            raise TimeoutError(f"benchmark at {label} stopped: {result.stopped_reason}")
    return out, warmup_s, measured_s
