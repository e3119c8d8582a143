"""Small, exact statistics in the stdlib: percentiles, Student-t quantiles, mean CIs."""
from __future__ import annotations

import math
import statistics
from typing import Dict, Iterable, Optional, Sequence, Tuple

DEFAULT_PERCENTILES: Tuple[float, ...] = (90.0, 95.0, 99.0, 99.9)


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Linear interpolation between closest ranks: numpy.percentile's default ("linear")."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    if not values:
        return None
    data = sorted(values)
    h = (len(data) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (h - lo) * (data[hi] - data[lo])


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction for the regularized incomplete beta (modified Lentz); converges in
    # well under 200 terms for the arguments the t-distribution needs.
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 301):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse Student-t CDF by bisection (120 halvings: far below float resolution)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p and hi < 1e12:  # bounded: doubles at most ~40 times
        hi *= 2.0
    for _iteration in range(120):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Optional[Tuple[float, float]]:
    """Two-sided t-interval for the mean; None below two samples (no spread to speak of)."""
    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return (mean - half, mean + half)


def pct_key(q: float) -> str:
    """90 -> 'p90', 99.9 -> 'p999': stable JSON keys for a configurable percentile set."""
    return "p" + f"{q:g}".replace(".", "")


def describe(values: Iterable[float], scale: float = 1.0,
             percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> Dict[str, object]:
    """Distribution summary; `scale` converts units (1000.0: seconds -> milliseconds)."""
    data = sorted(v * scale for v in values)
    out: Dict[str, object] = {"n": len(data)}
    if not data:
        out.update({k: None for k in ("mean", "median", "min", "max", "stdev", "ci95")})
        out.update({pct_key(q): None for q in percentiles})
        return out
    ci = mean_ci(data)
    out.update({
        "mean": statistics.fmean(data),
        "median": percentile(data, 50.0),
        "min": data[0],
        "max": data[-1],
        "stdev": statistics.stdev(data) if len(data) > 1 else None,
        "ci95": list(ci) if ci else None,
    })
    out.update({pct_key(q): percentile(data, q) for q in percentiles})
    return out
