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


def good(rec: RequestRecord, slos: Dict[str, float]) -> bool:
    """Meets every configured SLO (ttft_ms, tpot_ms, e2e_ms). Failed requests never do;
    TPOT is undefined for one output token, so a TPOT SLO cannot fail such a request."""
    if not rec.ok:
        return False
    values = {"ttft_ms": rec.ttft_s, "tpot_ms": tpot_s(rec), "e2e_ms": rec.e2e_s}
    for key, limit in slos.items():
        value = values.get(key)
        if value is None:
            if key == "tpot_ms":
                continue
            return False
        if value * MS > limit:
            return False
    return True


def goodput(records: Sequence[RequestRecord], duration_s: float,
            slos: Dict[str, float], target: float = 0.9) -> Optional[Dict[str, Any]]:
    """Share and rate of requests meeting all SLOs; None when no SLO is set."""
    if not slos:
        return None
    n_good = sum(1 for r in records if good(r, slos))
    share = (n_good / len(records)) if records else 0.0
    return {"slos": dict(slos), "target": target, "good": n_good, "total": len(records),
            "share": share, "requests_per_s": _rate(n_good, duration_s),
            "meets_target": bool(records) and share >= target}


def schedule_stats(records: Sequence[RequestRecord], target_rate: Optional[float],
                   percentiles: Sequence[float]) -> Dict[str, Any]:
    """How faithfully the sender kept its schedule: lag per send, achieved vs target rate."""
    sends = sorted(r.send_s for r in records)
    achieved = ((len(sends) - 1) / (sends[-1] - sends[0])
                if len(sends) > 1 and sends[-1] > sends[0] else None)
    lag = [r.dispatch_lag_s for r in records]
    return {
        "target_rate": target_rate,
        "achieved_rate": achieved,
        "rate_error": ((achieved - target_rate) / target_rate
                       if achieved is not None and target_rate else None),
        "dispatch_lag_ms": describe(lag, MS, percentiles),
        "abs_lag_p99_ms": (percentile([abs(x) * MS for x in lag], 99.0) if lag else None),
    }


def streams_summary(ok: Sequence[RequestRecord],
                    coalesced: Sequence[RequestRecord]) -> Dict[str, Any]:
    share = (len(coalesced) / len(ok)) if ok else None
    unavailable = None
    if coalesced:
        unavailable = (f"ITL unavailable for {len(coalesced)} of {len(ok)} requests "
                       f"({share:.0%}): their tokens arrived coalesced (several per network "
                       "read), so the gaps between tokens were not observable")
    return {"measured": len(ok) - len(coalesced), "coalesced": len(coalesced),
            "coalesced_share": share, "itl_unavailable": unavailable}


def _rate(amount: float, duration_s: float) -> Optional[float]:
    return amount / duration_s if duration_s > 0 else None


def summarize_records(records: Sequence[RequestRecord], duration_s: float, planned: int,
                      not_sent: int = 0, stopped_reason: Optional[str] = None,
                      percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                      slos: Optional[Dict[str, float]] = None, slo_target: float = 0.9,
                      target_rate: Optional[float] = None,
                      max_lag_ms: Optional[float] = None) -> Dict[str, Any]:
    # p90/p99 are always present: other tools (tune, the integration test) read them.
    percentiles = sorted(set(float(q) for q in percentiles) | {90.0, 99.0})
    ok: List[RequestRecord] = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    total = len(records)
    classes = Counter(r.error_class or "unknown" for r in failed)

    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    # Pooled gaps; TTFT is never one of them. Coalesced streams have no measured gaps: their
    # zeros would read as "instant tokens" and win comparisons they never measured.
    coalesced = [r for r in ok if r.coalesced]
    itl = [gap for r in ok if not r.coalesced for gap in r.itl_s]
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
    schedule = schedule_stats(records, target_rate, percentiles)
    lag_p99 = schedule["dispatch_lag_ms"].get("p99")
    if max_lag_ms is not None and lag_p99 is not None and lag_p99 > max_lag_ms:
        reasons.append(f"sender fell behind schedule: dispatch lag p99 {lag_p99:.2f} ms "
                       f"> {max_lag_ms:g} ms")
    queue = [r.queue_s for r in records if r.queue_s is not None]
    tokens_per_chunk = [t for r in ok for t in r.chunk_tokens]

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
        "queue_ms": describe(queue, MS, percentiles),  # client-side, never inside TTFT
        "schedule": schedule,
        "goodput": goodput(records, duration_s, slos or {}, slo_target),
        "tokens_per_chunk": describe(tokens_per_chunk, 1.0, percentiles),
        "streams": streams_summary(ok, coalesced),
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
              percentiles: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    config = run_result.config
    scheduled = run_result.profile in ("constant", "poisson", "trace")
    return summarize_records(run_result.records, run_result.duration_s,
                             planned=len(run_result.records) + run_result.not_sent,
                             not_sent=run_result.not_sent,
                             stopped_reason=run_result.stopped_reason,
                             percentiles=percentiles or config.percentiles,
                             slos=config.slos, slo_target=config.slo_target,
                             target_rate=run_result.target_rate,
                             max_lag_ms=config.max_dispatch_lag_ms if scheduled else None)
