"""Inline SVG charts for the single-file HTML reports (benchmark runs, sweeps, comparisons).

No JavaScript, fonts or files: the pages must open offline. (No chart library in the
locks fits: matplotlib is only in the fine-tuning venvs, altair needs vega's JavaScript
from a CDN.) One frame for every chart, so they share their rules:
- ticks fall on 1, 2, 2.5 or 5 x 10^k, and on whole numbers for count axes (`integer`);
- the legend sits on rows of its own under the title, so it never covers the title or data;
- a chart with fewer than two x positions is replaced by a sentence that gives the numbers.
Pages include CHART_CSS once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Callable, List, Optional, Sequence, Tuple

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563")
BAD = "#b91c1c"
CHART_CSS = (".chart{width:100%;height:auto;background:#fff;border:1px solid #e5e7eb;border-radius:10px}"
             ".chart .ct{font-size:13px;font-weight:600;fill:#111827}.chart .tk{font-size:11px;fill:#6b7280}"
             ".chart .al{font-size:12px;fill:#374151}.chart .grid{stroke:#eef2f7}"
             ".chart .box{fill:none;stroke:#e5e7eb}.chart .bad{fill:#b91c1c;font-size:14px}"
             ".chart-note{color:#6b7280;margin:8px 0}")
W, H = 640, 300
LEFT, RIGHT, BOTTOM = 58, 16, 44
TITLE_Y = 20
TOP = 30  # plot top without a legend; each legend row adds LEGEND_ROW
LEGEND_ROW = 16
CHAR_W = 6.5  # average width of an 11 px label character, for laying out legend rows

Point = Tuple[float, Optional[float]]


@dataclass
class Axis:
    label: str
    integer: bool = False  # a count: ticks on whole numbers only
    zero: bool = True  # the range starts at 0 (unless `lo` says otherwise)
    lo: Optional[float] = None
    hi: Optional[float] = None
    ticks: Optional[Sequence[Tuple[float, str]]] = None  # fixed (position, label) ticks
    fmt: Optional[Callable[[float], str]] = None


@dataclass
class Series:
    name: str
    points: Sequence[Point]  # y None: a failed point, drawn as a red x on the floor
    color: Optional[str] = None
    line: bool = True
    markers: bool = True
    legend: bool = True
    labels: Sequence[str] = field(default_factory=tuple)  # text next to each point


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> List[float]:
    """Ticks between lo and hi at a step of 1, 2, 2.5 or 5 x 10^k (integer: whole steps)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in ((1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)) if m * mag >= raw)
    if integer:
        step = max(1.0, float(round(step)))
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def number(value: float, integer: bool = False) -> str:
    if integer:
        return f"{int(round(value)):,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def percent(value: float) -> str:
    return f"{value:.0%}" if value == 0 or abs(value) >= 0.05 else f"{value:.1%}"


def note(text: str) -> str:
    """What stands where a chart would say nothing (no data, a single point)."""
    return f'<p class="chart-note">{escape(text)}</p>'


def _legend_rows(entries: Sequence[Tuple[str, str]]) -> List[List[Tuple[float, str, str]]]:
    rows: List[List[Tuple[float, str, str]]] = [[]]
    x = float(LEFT)
    for label, color in entries:
        width = CHAR_W * len(label) + 26
        if rows[-1] and x + width > W - RIGHT:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((x, label, color))
        x += width
    return rows if rows[0] else []


class Frame:
    """Title, legend rows, grid, ticks and axis labels; maps data to pixels."""

    def __init__(self, title: str, x: Axis, y: Axis, x_range: Tuple[float, float], y_range: Tuple[float, float],
                 legend: Sequence[Tuple[str, str]] = (), invert_y: bool = False) -> None:
        self.x_lo, self.x_hi = x_range
        self.y_lo, self.y_hi = y_range
        if self.x_hi <= self.x_lo:
            self.x_hi = self.x_lo + 1.0
        if self.y_hi <= self.y_lo:
            self.y_hi = self.y_lo + 1.0
        rows = _legend_rows(legend)
        self.top = TOP + LEGEND_ROW * len(rows)
        self.invert_y = invert_y
        self.parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg" role="img" '
                      f'aria-label="{escape(title)}">',
                      f'<text x="{LEFT}" y="{TITLE_Y}" class="ct">{escape(title)}</text>']
        for r, row in enumerate(rows):
            base = TITLE_Y + LEGEND_ROW * (r + 1)
            for lx, label, color in row:
                self.parts.append(f'<rect x="{lx:.1f}" y="{base - 6}" width="12" height="4" fill="{color}"/>'
                                  f'<text x="{lx + 16:.1f}" y="{base}" class="tk">{escape(label)}</text>')
        for value, label in self._ticks(x, self.x_lo, self.x_hi):
            px = self.fx(value)
            self.parts.append(f'<line x1="{px:.1f}" y1="{self.top}" x2="{px:.1f}" y2="{H - BOTTOM}" class="grid"/>'
                              f'<text x="{px:.1f}" y="{H - BOTTOM + 16}" class="tk" text-anchor="middle">'
                              f'{escape(label)}</text>')
        for value, label in self._ticks(y, self.y_lo, self.y_hi, count=4):
            py = self.fy(value)
            self.parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{W - RIGHT}" y2="{py:.1f}" class="grid"/>'
                              f'<text x="{LEFT - 6}" y="{py + 4:.1f}" class="tk" text-anchor="end">'
                              f'{escape(label)}</text>')
        mid_y = (self.top + H - BOTTOM) / 2
        self.parts.append(f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 8}" class="al" text-anchor="middle">'
                          f'{escape(x.label)}</text><text x="14" y="{mid_y:.0f}" class="al" text-anchor="middle" '
                          f'transform="rotate(-90 14 {mid_y:.0f})">{escape(y.label)}</text>'
                          f'<rect x="{LEFT}" y="{self.top}" width="{W - LEFT - RIGHT}" '
                          f'height="{H - self.top - BOTTOM}" class="box"/>')

    @staticmethod
    def _ticks(axis: Axis, lo: float, hi: float, count: int = 5) -> List[Tuple[float, str]]:
        if axis.ticks is not None:
            return [(v, label) for v, label in axis.ticks if lo <= v <= hi]
        fmt = axis.fmt or (lambda v: number(v, axis.integer))
        return [(v, fmt(v)) for v in nice_ticks(lo, hi, count, axis.integer) if lo - 1e-9 <= v <= hi + 1e-9]

    def fx(self, value: float) -> float:
        return LEFT + (value - self.x_lo) / (self.x_hi - self.x_lo) * (W - LEFT - RIGHT)

    def fy(self, value: float) -> float:
        share = (value - self.y_lo) / (self.y_hi - self.y_lo)
        if self.invert_y:
            return self.top + 4 + share * (H - self.top - BOTTOM - 8)
        return H - BOTTOM - share * (H - self.top - BOTTOM)

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def _range(axis: Axis, values: Sequence[float], pad: float = 0.05) -> Tuple[float, float]:
    lo = axis.lo if axis.lo is not None else (0.0 if axis.zero else min(values))
    hi = axis.hi if axis.hi is not None else max(values)
    span = (hi - lo) or abs(hi) or 1.0
    if axis.hi is None:
        hi += span * pad
    if axis.lo is None and not axis.zero:
        lo -= span * pad
    return lo, hi


def _colored(series: Sequence[Series]) -> List[Series]:
    return [s if s.color else Series(s.name, s.points, PALETTE[i % len(PALETTE)], s.line, s.markers, s.legend, s.labels)
            for i, s in enumerate(series)]


def _one_point(title: str, x: Axis, y: Axis, series: Sequence[Series]) -> str:
    xs = {px for s in series for px, _py in s.points}
    if not xs:
        return note(f"{title}: no data.")
    values = [f"{s.name} {(y.fmt or number)(py)}" if py is not None else f"{s.name} failed"
              for s in series for _px, py in s.points]
    where = (x.fmt or (lambda v: number(v, x.integer)))(next(iter(xs)))
    return note(f"{title}: a single point ({x.label} {where}: {', '.join(values)}); nothing to draw a line through.")


def xy_chart(title: str, series: Sequence[Series], x: Axis, y: Axis,
             hline: Optional[Tuple[str, float]] = None) -> str:
    """Lines and/or points on shared axes; `hline` draws a labelled threshold (an SLO)."""
    series = _colored([s for s in series if s.points])
    if len({px for s in series for px, _py in s.points}) < 2:
        return _one_point(title, x, y, series)
    xs = [px for s in series for px, _py in s.points]
    ys = [py for s in series for _px, py in s.points if py is not None] + ([hline[1]] if hline else [])
    frame = Frame(title, x, y, _range(x, xs, pad=0.02 if x.ticks is None else 0.0), _range(y, ys or [0.0]),
                  legend=[(s.name, s.color) for s in series if s.legend])
    parts = frame.parts
    if hline:
        py = frame.fy(hline[1])
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{W - RIGHT}" y2="{py:.1f}" stroke="{BAD}" '
                     f'stroke-dasharray="6 4" stroke-width="1.5"/><text x="{W - RIGHT - 4}" y="{py - 4:.1f}" '
                     f'class="tk" text-anchor="end" fill="{BAD}">{escape(hline[0])}</text>')
    for s in series:
        drawn = sorted((px, py) for px, py in s.points if py is not None) if s.line else []
        if len(drawn) > 1:
            path = " ".join(f"{frame.fx(px):.1f},{frame.fy(py):.1f}" for px, py in drawn)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"/>')
        for i, (px, py) in enumerate(s.points):
            label = s.labels[i] if i < len(s.labels) else ""
            if py is None:
                parts.append(f'<text x="{frame.fx(px):.1f}" y="{H - BOTTOM - 4}" class="bad" '
                             f'text-anchor="middle">×</text>')
                continue
            cx, cy = frame.fx(px), frame.fy(py)
            if s.markers and len(s.points) <= 60:
                tip = f"<title>{escape(label)}</title>" if label else ""
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{s.color}">{tip}</circle>')
            if label:
                # Labels of points in the right quarter go to their left, inside the frame.
                right = cx > LEFT + 0.75 * (W - LEFT - RIGHT)
                anchor = f'x="{cx - 7:.1f}" text-anchor="end"' if right else f'x="{cx + 7:.1f}"'
                parts.append(f'<text {anchor} y="{cy - 6:.1f}" class="tk">{escape(label)}</text>')
    return frame.svg()


CDF_POINTS = 200  # enough for a smooth curve, small enough to keep reports light


def cdf_chart(title: str, series: Sequence[Tuple[str, Sequence[float]]], x_label: str = "latency (ms)") -> str:
    """Empirical CDF per series on shared axes; reading it: y = share of requests <= x."""
    present = [(name, sorted(values)) for name, values in series if values]
    if not any(len(values) > 1 for _name, values in present):
        one = ", ".join(f"{name} {number(values[0])}" for name, values in present)
        return note(f"{title}: {'a single value (' + one + ')' if present else 'no data'}; no distribution to draw.")
    x_hi = max(values[-1] for _name, values in present) * 1.02 or 1.0
    x_min = min(values[0] for _name, values in present)
    x_lo = 0.0
    if x_min > 0.3 * x_hi:
        # Tight distributions far from zero would be a vertical line at the right edge:
        # start the axis at the tick just below the fastest request instead.
        x_lo = max(t for t in [0.0] + nice_ticks(0.0, x_min) if t <= x_min * 0.98)
    y = Axis("share of requests", ticks=[(q, percent(q)) for q in (0.0, 0.25, 0.5, 0.75, 1.0)])
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(present))]
    legend = list(zip([name for name, _values in present], colors))
    frame = Frame(title, Axis(x_label), y, (x_lo, x_hi), (0.0, 1.0), legend=legend)
    for color, (_name, values) in zip(colors, present):
        steps = min(CDF_POINTS, max(len(values) - 1, 1))
        points = [(values[round(k / steps * (len(values) - 1))], k / steps) for k in range(steps + 1)]
        path = " ".join(f"{frame.fx(px):.1f},{frame.fy(py):.1f}" for px, py in points)
        frame.parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    return frame.svg()


def histogram_chart(title: str, values: Sequence[float], x_label: str = "latency (ms)", bins: int = 40) -> str:
    """Histogram clipped at p99.5 so one straggler does not squash every other bar."""
    if len(values) < 2:
        return note(f"{title}: " + (f"a single value ({number(values[0])}); no distribution to draw."
                                    if values else "no data."))
    data = sorted(values)
    x_lo, x_hi = data[0], data[min(len(data) - 1, math.ceil(0.995 * len(data)) - 1)]
    if x_hi <= x_lo:
        x_hi = data[-1] if data[-1] > x_lo else x_lo + 1.0
    width = (x_hi - x_lo) / bins
    counts = [0] * bins
    for v in data:
        counts[min(int((v - x_lo) / width), bins - 1)] += 1  # the clipped tail lands in the last bin
    peak = max(counts) / len(data)
    frame = Frame(title, Axis(x_label), Axis("share of values", fmt=percent), (x_lo, x_hi), (0.0, peak))
    for b, count in enumerate(counts):
        if count:
            x0, x1 = frame.fx(x_lo + b * width), frame.fx(x_lo + (b + 1) * width)
            top = frame.fy(count / len(data))
            frame.parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{top:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
                               f'height="{H - BOTTOM - top:.1f}" fill="{PALETTE[0]}" opacity="0.8"/>')
    return frame.svg()


def timeline_chart(title: str, rows: Sequence[Tuple[float, float, Optional[float], bool]], max_rows: int = 400) -> str:
    """One line per request: send -> end (s since start), a dot at the first token; failed
    requests in red. Evenly thinned to `max_rows` so large runs stay light."""
    if not rows:
        return note(f"{title}: no requests.")
    step = max(1, math.ceil(len(rows) / max_rows))
    shown = list(rows)[::step]
    # The y axis counts requests (whole numbers), numbered as in the run, thinned or not.
    frame = Frame(title, Axis("seconds since the first send"), Axis("request", integer=True),
                  (0.0, max(r[1] for r in shown) * 1.02 or 1.0), (0.0, float(len(rows))), invert_y=True)
    for i, (start, end, first, ok) in enumerate(shown):
        y = frame.fy(i * step)
        frame.parts.append(f'<line x1="{frame.fx(start):.1f}" y1="{y:.1f}" x2="{frame.fx(end):.1f}" y2="{y:.1f}" '
                           f'stroke="{PALETTE[0] if ok else BAD}" stroke-width="1"/>')
        if first is not None:
            frame.parts.append(f'<circle cx="{frame.fx(first):.1f}" cy="{y:.1f}" r="1.3" fill="#059669"/>')
    return frame.svg()
