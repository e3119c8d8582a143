"""Inline SVG charts (CDF, histogram) with no JavaScript: reports must open offline."""
from __future__ import annotations

import math
from html import escape
from typing import List, Optional, Sequence, Tuple

from .stats import percentile

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2",
           "#4b5563")
W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 34, 44
CDF_POINTS = 200  # enough for a smooth curve, small enough to keep reports light

Series = Tuple[str, Sequence[float]]


def _ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _frame(title: str, x_label: str, y_label: str, x_lo: float, x_hi: float,
           y_ticks: Sequence[Tuple[float, str]], x_map, y_map) -> List[str]:
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{LEFT}" y="20" class="ct">{escape(title)}</text>']
    for x in _ticks(x_lo, x_hi):
        px = x_map(x)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{H - BOTTOM}" '
                     'class="grid"/>')
        parts.append(f'<text x="{px:.1f}" y="{H - BOTTOM + 16}" class="tk" '
                     f'text-anchor="middle">{_fmt(x)}</text>')
    for y, label in y_ticks:
        py = y_map(y)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{W - RIGHT}" y2="{py:.1f}" '
                     'class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" class="tk" '
                     f'text-anchor="end">{escape(label)}</text>')
    parts.append(f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 8}" class="al" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{(TOP + H - BOTTOM) / 2:.0f}" class="al" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2:.0f})">{escape(y_label)}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
                 f'height="{H - TOP - BOTTOM}" class="box"/>')
    return parts


def _empty(title: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {W} 80" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="{LEFT}" y="20" class="ct">{escape(title)}</text>'
            f'<text x="{LEFT}" y="52" class="tk">no data</text></svg>')


def _legend(labels: Sequence[str]) -> List[str]:
    parts, x = [], W - RIGHT - 8
    for i, label in reversed(list(enumerate(labels))):
        x -= 7 * len(label) + 26
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="11" width="12" height="4" fill="{color}"/>'
                     f'<text x="{x + 16}" y="17" class="tk">{escape(label)}</text>')
    return parts


def cdf_chart(title: str, series: Sequence[Series], x_label: str = "latency (ms)") -> str:
    """Empirical CDF per series on shared axes; reading it: y = share of requests <= x."""
    present = [(name, sorted(vals)) for name, vals in series if vals]
    if not present:
        return _empty(title)
    x_hi = max(vals[-1] for _name, vals in present) * 1.02 or 1.0
    x_min = min(vals[0] for _name, vals in present)
    x_lo = 0.0
    if x_min > 0.3 * x_hi:
        # Tight distributions far from zero would be a vertical line at the right edge:
        # start the axis at the tick just below the fastest request instead.
        x_lo = max(t for t in [0.0] + _ticks(0.0, x_min) if t <= x_min * 0.98)

    def x_map(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)

    def y_map(y: float) -> float:
        return H - BOTTOM - y * (H - TOP - BOTTOM)

    y_ticks = [(q, f"{q:.0%}") for q in (0.0, 0.25, 0.5, 0.75, 1.0)]
    parts = _frame(title, x_label, "share of requests", x_lo, x_hi, y_ticks, x_map, y_map)
    for i, (_name, vals) in enumerate(present):
        steps = min(CDF_POINTS, max(len(vals) - 1, 1))
        pts = [(percentile(vals, 100.0 * k / steps), k / steps) for k in range(steps + 1)]
        path = " ".join(f"{x_map(x):.1f},{y_map(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" '
                     'stroke-width="2"/>')
    parts += _legend([name for name, _vals in present])
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(title: str, values: Sequence[float], x_label: str = "latency (ms)",
                    bins: int = 40) -> str:
    """Histogram clipped at p99.5 so one straggler does not squash every other bar."""
    if not values:
        return _empty(title)
    data = sorted(values)
    x_lo = data[0]
    x_hi = percentile(data, 99.5) or data[-1]
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    width = (x_hi - x_lo) / bins
    counts = [0] * bins
    for v in data:
        counts[min(int((v - x_lo) / width), bins - 1)] += 1  # clipped tail lands in last bin
    peak = max(counts) / len(data)

    def x_map(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)

    def y_map(y: float) -> float:
        return H - BOTTOM - y / peak * (H - TOP - BOTTOM)

    y_ticks = [(t, f"{t:.0%}" if peak >= 0.05 else f"{t:.1%}") for t in _ticks(0.0, peak, 4)
               if t <= peak]
    parts = _frame(title, x_label, "share of values", x_lo, x_hi, y_ticks, x_map, y_map)
    for b, count in enumerate(counts):
        if count:
            x0, x1 = x_map(x_lo + b * width), x_map(x_lo + (b + 1) * width)
            y = y_map(count / len(data))
            parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
                         f'height="{H - BOTTOM - y:.1f}" fill="{PALETTE[0]}" opacity="0.8"/>')
    parts.append("</svg>")
    return "".join(parts)


Points = Sequence[Tuple[float, float]]


def _axis_range(values: Sequence[float], floor_zero: bool = True) -> Tuple[float, float]:
    lo = 0.0 if floor_zero else min(values)
    hi = max(values) * 1.05 if values else 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def line_chart(title: str, series: Sequence[Tuple[str, Points]], x_label: str, y_label: str,
               hline: Optional[Tuple[str, float]] = None, markers: bool = True) -> str:
    """Lines with point markers on shared axes; `hline` draws a labelled threshold (an SLO)."""
    present = [(name, sorted(pts)) for name, pts in series if pts]
    if not present:
        return _empty(title)
    xs = [x for _name, pts in present for x, _y in pts]
    ys = [y for _name, pts in present for _x, y in pts] + ([hline[1]] if hline else [])
    x_lo, x_hi = _axis_range(xs)
    y_lo, y_hi = _axis_range(ys)

    def x_map(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)

    def y_map(y: float) -> float:
        return H - BOTTOM - (y - y_lo) / (y_hi - y_lo) * (H - TOP - BOTTOM)

    y_ticks = [(t, _fmt(t)) for t in _ticks(y_lo, y_hi, 4) if t <= y_hi]
    parts = _frame(title, x_label, y_label, x_lo, x_hi, y_ticks, x_map, y_map)
    if hline:
        py = y_map(hline[1])
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{W - RIGHT}" y2="{py:.1f}" '
                     'stroke="#b91c1c" stroke-dasharray="6 4" stroke-width="1.5"/>'
                     f'<text x="{W - RIGHT - 4}" y="{py - 4:.1f}" class="tk" '
                     f'text-anchor="end" fill="#b91c1c">{escape(hline[0])}</text>')
    for i, (_name, pts) in enumerate(present):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{x_map(x):.1f},{y_map(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if markers and len(pts) <= 60:
            parts += [f'<circle cx="{x_map(x):.1f}" cy="{y_map(y):.1f}" r="3" fill="{color}"/>'
                      for x, y in pts]
    parts += _legend([name for name, _pts in present])
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(title: str, rows: Sequence[Tuple[float, float, Optional[float], bool]],
                   max_rows: int = 400) -> str:
    """One line per request: send -> end (s since start), a tick at the first token; failed
    requests in red. Evenly thinned to `max_rows` so large runs stay light."""
    if not rows:
        return _empty(title)
    step = max(1, math.ceil(len(rows) / max_rows))
    shown = list(rows)[::step]
    x_lo, x_hi = 0.0, max(r[1] for r in shown) * 1.02 or 1.0
    n = len(shown)

    def x_map(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)

    def y_map(y: float) -> float:
        return TOP + 4 + y / max(n, 1) * (H - TOP - BOTTOM - 8)

    y_ticks = [(float(t), f"{int(t * step)}") for t in _ticks(0.0, float(n), 4) if t <= n]
    parts = _frame(title, "seconds since the first send", "request", x_lo, x_hi, y_ticks,
                   x_map, y_map)
    for i, (start, end, first, ok) in enumerate(shown):
        y = y_map(i)
        color = PALETTE[0] if ok else "#dc2626"
        parts.append(f'<line x1="{x_map(start):.1f}" y1="{y:.1f}" x2="{x_map(end):.1f}" '
                     f'y2="{y:.1f}" stroke="{color}" stroke-width="1"/>')
        if first is not None:
            parts.append(f'<circle cx="{x_map(first):.1f}" cy="{y:.1f}" r="1.3" fill="#059669"/>')
    parts.append("</svg>")
    return "".join(parts)
