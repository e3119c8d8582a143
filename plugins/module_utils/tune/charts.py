"""Inline SVG charts for the sweep report (no JavaScript, opens offline)."""
from __future__ import annotations

from html import escape
from typing import Optional, Sequence

W, H = 640, 320
L, R, T, B = 64, 16, 34, 46


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _axes(title: str, xl: str, yl: str, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> list[str]:
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="{escape(title)}"><text x="{L}" y="20" class="ct">{escape(title)}</text>',
             f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" class="box"/>']
    fx, fy = _scale(x_lo, x_hi, L, W - R), _scale(y_lo, y_hi, H - B, T)
    for i in range(5):
        xv = x_lo + (x_hi - x_lo) * i / 4
        yv = y_lo + (y_hi - y_lo) * i / 4
        parts.append(f'<text x="{fx(xv):.1f}" y="{H - B + 16}" class="tk" text-anchor="middle">{_fmt(xv)}</text>')
        parts.append(f'<text x="{L - 6}" y="{fy(yv) + 4:.1f}" class="tk" text-anchor="end">{_fmt(yv)}</text>')
    parts.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 8}" class="al" text-anchor="middle">{escape(xl)}</text>')
    parts.append(f'<text x="14" y="{(T + H - B) / 2:.0f}" class="al" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(T + H - B) / 2:.0f})">{escape(yl)}</text>')
    return parts


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def objective_chart(values: Sequence[Optional[float]], direction: str, label: str) -> str:
    """Each trial's objective (dots; infeasible as red x at the bottom) and best so far (line)."""
    title = "Objective over trials"
    present = [v for v in values if v is not None]
    if not present:
        return f'<p class="sub">{escape(title)}: no feasible trial.</p>'
    y_lo, y_hi = _bounds(present)
    x_lo, x_hi = -0.5, max(len(values) - 0.5, 0.5)
    parts = _axes(title, "trial", label, x_lo, x_hi, y_lo, y_hi)
    fx, fy = _scale(x_lo, x_hi, L, W - R), _scale(y_lo, y_hi, H - B, T)
    best: Optional[float] = None
    line = []
    for i, v in enumerate(values):
        if v is None:
            parts.append(f'<text x="{fx(i):.1f}" y="{H - B - 4}" class="bad" text-anchor="middle">×</text>')
        else:
            parts.append(f'<circle cx="{fx(i):.1f}" cy="{fy(v):.1f}" r="4" fill="#2563eb"/>')
            if best is None or (v < best if direction == "minimize" else v > best):
                best = v
        if best is not None:
            line.append(f"{fx(i):.1f},{fy(best):.1f}")
    parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#059669" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated when maximising x (throughput) and minimising y (latency)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return front


def pareto_chart(points: Sequence[tuple[float, float]], labels: Sequence[str]) -> str:
    title = "Throughput vs latency (Pareto front in green)"
    if not points:
        return f'<p class="sub">{escape(title)}: no feasible trial.</p>'
    x_lo, x_hi = _bounds([p[0] for p in points])
    y_lo, y_hi = _bounds([p[1] for p in points])
    parts = _axes(title, "output tokens/s", "mean E2E latency (ms)", x_lo, x_hi, y_lo, y_hi)
    fx, fy = _scale(x_lo, x_hi, L, W - R), _scale(y_lo, y_hi, H - B, T)
    front = sorted(pareto_front(points), key=lambda i: points[i][0])
    parts.append('<polyline points="' + " ".join(f"{fx(points[i][0]):.1f},{fy(points[i][1]):.1f}" for i in front)
                 + '" fill="none" stroke="#059669" stroke-width="2"/>')
    for i, (x, y) in enumerate(points):
        color = "#059669" if i in front else "#94a3b8"
        parts.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="5" fill="{color}"><title>{escape(labels[i])}'
                     f"</title></circle>")
        parts.append(f'<text x="{fx(x) + 7:.1f}" y="{fy(y) - 6:.1f}" class="tk">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)
