"""Percentile plots for the comparison page, drawn by the shared chart module (module_utils/charts.py).

Each repeat of each arm is one line over the latency percentiles its benchmark summary holds,
so the page overlays the arms and shows their run-to-run spread at every percentile.
"""
from __future__ import annotations

from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.charts import Axis, Series, xy_chart

PERCENTILES = [("median", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9)]
LATENCIES = [("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("e2e_ms", "E2E")]
COLORS = ["#1f6fb4", "#e07b00", "#2a9d3a", "#9b3bb0"]


def percentile_series(runs: dict[str, dict[str, list[dict]]], arms: list[str]) -> dict[str, Any]:
    """{model: {latency key: {arm: [[ms per PERCENTILES entry] per repeat]}}} from run summaries."""
    out: dict[str, Any] = {}
    for arm in arms:
        for model, summaries in runs.get(arm, {}).items():
            for key, _label in LATENCIES:
                lines = []
                for summary in summaries:
                    block = summary.get(key) or {}
                    values = [block.get(name) for name, _quantile in PERCENTILES]
                    if all(isinstance(v, (int, float)) for v in values):
                        lines.append([float(v) for v in values])
                out.setdefault(model, {}).setdefault(key, {})[arm] = lines
    return out


def svg_plot(title: str, by_arm: dict[str, list[list[float]]]) -> str:
    """One latency's percentile curves, every repeat of every arm; the y axis starts at 0."""
    series = []
    for k, (arm, lines) in enumerate(by_arm.items()):
        color = COLORS[k % len(COLORS)]
        series += [Series(f"{arm} ({len(lines)})", list(enumerate(line)), color=color, markers=False, legend=i == 0)
                   for i, line in enumerate(lines)]
    ticks = [(float(i), "p50" if name == "median" else name) for i, (name, _quantile) in enumerate(PERCENTILES)]
    return xy_chart(f"{title} (ms)", series, Axis("percentile", ticks=ticks, lo=0, hi=len(PERCENTILES) - 1),
                    Axis("latency (ms)"))


def render_plots(series: dict[str, Any], model: str) -> str:
    """The model's TTFT / ITL / E2E percentile plots side by side (empty when no data)."""
    plots = [svg_plot(label, series[model][key]) for key, label in LATENCIES
             if any(series.get(model, {}).get(key, {}).values())]
    return f'<div class="charts">{"".join(plots)}</div>' if plots else ""
