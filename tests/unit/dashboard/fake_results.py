"""A small comparison tree shaped like playbooks/compare.yml's: <root>/<run>/<arm>/run<k>/<model>/results.json.

Summaries carry the benchmark engine's keys (requests, throughput, ttft/itl/e2e_ms with n, mean,
median, min, max, stdev, p90..p999), scaled so that in every run `managed` beats `baseline`
beyond noise on chat and is mixed on code (better TTFT, worse E2E tail).
"""
from __future__ import annotations

import json
import os

RUNS = ("20260101T000000Z", "20260102T000000Z")
MODELS = ("chat", "code")


def latency(mean: float, n: int) -> dict:
    return {"n": n, "mean": mean, "median": mean * 0.8, "min": mean * 0.1, "max": mean * 4.5,
            "stdev": mean * 0.9, "p90": mean * 1.6, "p95": mean * 2.0, "p99": mean * 3.0, "p999": mean * 4.0}


def summary(rps: float, ttft: float, itl: float, e2e: float, requests: int = 100) -> dict:
    return {"valid": True, "invalid_reasons": [], "duration_s": requests / rps,
            "requests": {"planned": requests, "total": requests, "succeeded": requests, "failed": 0,
                         "not_sent": 0, "success_rate": 1.0, "error_classes": {}},
            "throughput": {"requests_per_s": rps, "output_tokens_per_s": rps * 64, "total_tokens_per_s": rps * 164},
            "ttft_ms": latency(ttft, requests), "itl_ms": latency(itl, requests * 63),
            "e2e_ms": latency(e2e, requests), "profile": "concurrency",
            "schema": "llmops.platform/bench-summary/v1"}


# (arm, model) -> per-repeat (requests/s, TTFT mean, ITL mean, E2E mean)
SERIES = {
    ("baseline", "chat"): [(6.0, 800.0, 20.0, 1600.0), (6.2, 820.0, 21.0, 1650.0)],
    ("managed", "chat"): [(7.5, 300.0, 19.0, 1100.0), (7.7, 310.0, 20.0, 1120.0)],
    ("baseline", "code"): [(5.5, 700.0, 30.0, 1500.0), (5.6, 720.0, 30.0, 1520.0)],
    ("managed", "code"): [(5.5, 200.0, 30.0, 2600.0), (5.6, 210.0, 30.0, 2650.0)],
}


def write_tree(root: str, runs: tuple[str, ...] = RUNS) -> str:
    for run in runs:
        for (arm, model), repeats in SERIES.items():
            for k, (rps, ttft, itl, e2e) in enumerate(repeats, 1):
                d = os.path.join(root, run, arm, f"run{k}", model)
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "results.json"), "w", encoding="utf-8") as handle:
                    json.dump({"schema_version": 1, "kind": "bench", "summary": summary(rps, ttft, itl, e2e)}, handle)
    return root
