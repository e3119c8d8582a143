"""From request records to the summary every output shows. Pure functions, no I/O."""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

from .records import RequestRecord, RunResult
from .stats import DEFAULT_PERCENTILES, describe, percentile

__all__ = ["MAX_ERROR_SHARE", "describe", "percentile", "summarize", "summarize_records", "tpot_s"]

# More than this share of failed requests and the latency numbers describe a broken server,
# not its performance: the run is marked invalid everywhere it is shown.
MAX_ERROR_SHARE = 0.01
MS = 1000.0


def tpot_s(rec: RequestRecord) -> Optional[float]:
    """vLLM's TPOT: decode time per output token after the first; undefined for <= 1 token."""
    if not rec.ok or rec.ttft_s is None or rec.e2e_s is None:
        return None
    if rec.output_tokens is None or rec.output_tokens <= 1:
        return None
    return (rec.e2e_s - rec.ttft_s) / (rec.output_tokens - 1)


def _rate(amount: float, duration_s: float) -> Optional[float]:
    return amount / duration_s if duration_s > 0 else None


def summarize_records(records: Sequence[RequestRecord], duration_s: float, planned: int,
                      not_sent: int = 0, stopped_reason: Optional[str] = None,
                      percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> Dict[str, Any]:
    ok: List[RequestRecord] = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    total = len(records)
    classes = Counter(r.error_class or "unknown" for r in failed)

    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    itl = [gap for r in ok for gap in r.itl_s]  # pooled gaps; TTFT is never one of them
    tpot = [t for t in (tpot_s(r) for r in ok) if t is not None]
    e2e = [r.e2e_s for r in ok if r.e2e_s is not None]

    input_total = sum(r.input_tokens for r in ok if r.input_tokens is not None)
    output_total = sum(r.output_tokens for r in ok if r.output_tokens is not None)
    usage_missing = sum(1 for r in ok if r.output_tokens is None)

    error_share = (len(failed) / total) if total else 1.0
    reasons: List[str] = []
    if not ok:
        reasons.append("no request succeeded")
    if error_share > MAX_ERROR_SHARE:
        reasons.append(f"{error_share:.1%} of requests failed (limit {MAX_ERROR_SHARE:.0%}): "
                       + ", ".join(f"{k}={v}" for k, v in sorted(classes.items())))
    if not_sent:
        reasons.append(f"{not_sent} of {planned} requests were never sent"
                       + (f" ({stopped_reason})" if stopped_reason else ""))

    return {
        "valid": not reasons,
        "invalid_reasons": reasons,
        "duration_s": duration_s,
        "requests": {
            "planned": planned,
            "total": total,
            "succeeded": len(ok),
            "failed": len(failed),
            "not_sent": not_sent,
            "success_rate": (len(ok) / total) if total else 0.0,
            "error_classes": dict(sorted(classes.items())),
        },
        "ttft_ms": describe(ttft, MS, percentiles),
        "itl_ms": describe(itl, MS, percentiles),
        "tpot_ms": describe(tpot, MS, percentiles),
        "e2e_ms": describe(e2e, MS, percentiles),
        "throughput": {
            "requests_per_s": _rate(len(ok), duration_s),
            "output_tokens_per_s": _rate(output_total, duration_s),
            "total_tokens_per_s": _rate(input_total + output_total, duration_s),
        },
        "tokens": {
            "input_total": input_total,
            "output_total": output_total,
            "usage_missing": usage_missing,
        },
    }


def summarize(run_result: RunResult,
              percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> Dict[str, Any]:
    return summarize_records(run_result.records, run_result.duration_s,
                             planned=run_result.config.num_requests,
                             not_sent=run_result.not_sent,
                             stopped_reason=run_result.stopped_reason,
                             percentiles=percentiles)
