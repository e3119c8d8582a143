"""Inline-SVG percentile plots for the comparison page (stdlib only, one self-contained file).

Each repeat of each arm is one line over the latency percentiles its benchmark summary holds,
so the page overlays the arms and shows their run-to-run spread at every percentile.
"""
from __future__ import annotations

import html
from typing import Any

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


def svg_plot(title: str, by_arm: dict[str, list[list[float]]], width: int = 360, height: int = 220) -> str:
    """One latency's percentile curves, every repeat of every arm; the y axis starts at 0."""
    top = max((v for lines in by_arm.values() for line in lines for v in line), default=0.0) or 1.0
    left, right, upper, lower = 56, 22, 24, 30
    plot_w, plot_h = width - left - right, height - upper - lower

    def x(i: int) -> float:
        return left + plot_w * i / (len(PERCENTILES) - 1)

    def y(v: float) -> float:
        return upper + plot_h * (1 - v / top)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             f"aria-label='{html.escape(title)}'>"
             f"<text x='{left}' y='15' font-size='13'>{html.escape(title)} (ms)</text>",
             f"<line x1='{left}' y1='{upper + plot_h}' x2='{left + plot_w}' y2='{upper + plot_h}' stroke='#999'/>",
             f"<line x1='{left}' y1='{upper}' x2='{left}' y2='{upper + plot_h}' stroke='#999'/>",
             f"<text x='{left - 4}' y='{upper + 4}' font-size='10' text-anchor='end'>{top:.0f}</text>",
             f"<text x='{left - 4}' y='{upper + plot_h}' font-size='10' text-anchor='end'>0</text>"]
    for i, (name, _quantile) in enumerate(PERCENTILES):
        parts.append(f"<text x='{x(i):.1f}' y='{height - 12}' font-size='10' text-anchor='middle'>"
                     f"{'p50' if name == 'median' else name}</text>")
    for k, (arm, lines) in enumerate(by_arm.items()):
        color = COLORS[k % len(COLORS)]
        for line in lines:
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line))
            parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.5' opacity='0.8' points='{points}'/>")
        parts.append(f"<text x='{left + 8 + 90 * k}' y='{upper + 12}' font-size='11' fill='{color}'>"
                     f"{html.escape(arm)} ({len(lines)})</text>")
    return "".join(parts) + "</svg>"


def render_plots(series: dict[str, Any], model: str) -> str:
    """The model's TTFT / ITL / E2E percentile plots side by side (empty when no data)."""
    plots = [svg_plot(label, series[model][key]) for key, label in LATENCIES
             if any(series.get(model, {}).get(key, {}).values())]
    return f"<div class=plots>{''.join(plots)}</div>" if plots else ""
