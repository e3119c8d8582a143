"""From benchmark summaries to one score per trial, with SLOs applied.

A trial is measured at every (scenario, concurrency) point; its metric is the mean over
points (each point weighs the same, as in 004). Goodput counts only requests that meet
every per-request SLO threshold. SLO checks on a percentile either worsen the score
(penalty: relative excess x weight) or make the trial infeasible (hard).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import percentile, tpot_s

SLO_METRICS = {"ttft_ms": "ttft", "tpot_ms": "tpot", "e2e_ms": "e2e"}


def request_values_ms(record: Any) -> dict[str, Optional[float]]:
    tpot = tpot_s(record)
    return {
        "ttft_ms": None if record.ttft_s is None else record.ttft_s * 1000.0,
        "tpot_ms": None if tpot is None else tpot * 1000.0,
        "e2e_ms": None if record.e2e_s is None else record.e2e_s * 1000.0,
    }


def good_request(values: dict[str, Optional[float]], slo: dict[str, Any]) -> bool:
    for key in SLO_METRICS:
        if key in slo:
            value = values.get(key)
            if key == "tpot_ms" and value is None:
                continue  # one-token outputs have no TPOT; they cannot violate it
            if value is None or value > slo[key]:
                return False
    return True


def point_metrics(records: Sequence[Any], summary: dict[str, Any], slo: dict[str, Any]) -> dict[str, Any]:
    """The numbers a trial keeps per point (the full per-request data stays in bench results)."""
    thr = summary.get("throughput", {})
    duration = summary.get("duration_s") or 0.0
    ok = [r for r in records if r.ok]
    values = [request_values_ms(r) for r in ok]
    good = sum(1 for v in values if good_request(v, slo)) if slo else len(ok)
    out = {
        "valid": summary.get("valid", False),
        "invalid_reasons": summary.get("invalid_reasons", []),
        "requests": summary.get("requests", {}).get("total", 0),
        "failed": summary.get("requests", {}).get("failed", 0),
        "duration_s": duration,
        "requests_per_s": thr.get("requests_per_s"),
        "output_tokens_per_s": thr.get("output_tokens_per_s"),
        "goodput_rps": (good / duration) if duration > 0 else 0.0,
        "good_share": (good / len(records)) if records else 0.0,
    }
    for key in SLO_METRICS:
        stats = summary.get(key, {})
        out[key] = stats.get("mean")
        out[f"{key}_p50"] = stats.get("median")
        out[f"{key}_p90"] = stats.get("p90")
        out[f"{key}_p99"] = stats.get("p99")
        pct = slo.get("percentile", 90.0)
        series = sorted(v[key] for v in values if v[key] is not None)
        out[f"{key}_slo_pct"] = percentile(series, pct) if series else None
    return out


def _mean(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def score(points: list[dict[str, Any]], metric: str, direction: str, slo: dict[str, Any],
          gpus_per_server: int = 0) -> dict[str, Any]:
    """Returns {value, raw, feasible, reason, slo_violations, metrics}; value is None when infeasible."""
    if not points:
        return {"value": None, "raw": None, "feasible": False, "reason": "no benchmark points", "metrics": {}}
    invalid = [p for p in points if not p.get("valid")]
    agg = {k: _mean([p.get(k) for p in points]) for k in
           ("e2e_ms", "ttft_ms", "tpot_ms", "requests_per_s", "output_tokens_per_s", "goodput_rps",
            "e2e_ms_p90", "ttft_ms_p90", "tpot_ms_p90")}
    if gpus_per_server > 0:  # "per GPU where GPUs are used"
        agg["output_tokens_per_s_per_gpu"] = (agg["output_tokens_per_s"] or 0.0) / gpus_per_server
    result: dict[str, Any] = {"metrics": agg, "slo_violations": []}
    if invalid:
        reasons = "; ".join(r for p in invalid for r in p.get("invalid_reasons", []))[:500]
        return {**result, "value": None, "raw": None, "feasible": False,
                "reason": f"benchmark invalid: {reasons or 'too many failed requests'}"}
    key = "output_tokens_per_s_per_gpu" if metric == "output_tokens_per_s" and gpus_per_server > 0 else metric
    raw = agg.get(key)
    if raw is None:
        return {**result, "value": None, "raw": None, "feasible": False, "reason": f"no {metric} measured"}
    violations = []
    for slo_key in SLO_METRICS:
        if slo_key in slo:
            observed = _mean([p.get(f"{slo_key}_slo_pct") for p in points])
            if observed is not None and observed > slo[slo_key]:
                violations.append({"metric": slo_key, "percentile": slo["percentile"],
                                   "observed": observed, "threshold": slo[slo_key],
                                   "excess": observed / slo[slo_key] - 1.0})
    result["slo_violations"] = violations
    if violations and slo.get("mode") == "hard":
        text = ", ".join(f"p{v['percentile']:g} {v['metric']} {v['observed']:.1f} > {v['threshold']:g}"
                         for v in violations)
        return {**result, "value": None, "raw": raw, "feasible": False, "reason": f"SLO violated: {text}"}
    value = raw
    if violations and metric != "goodput_rps":  # goodput already counts SLO misses
        factor = 1.0 + slo.get("penalty_weight", 1.0) * sum(v["excess"] for v in violations)
        value = raw * factor if direction == "minimize" else raw / factor
    return {**result, "value": value, "raw": raw, "feasible": True, "reason": ""}


def better(a: Optional[float], b: Optional[float], direction: str) -> bool:
    """Is a strictly better than b (None is worst)?"""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if direction == "minimize" else a > b
