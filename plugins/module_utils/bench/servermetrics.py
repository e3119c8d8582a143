"""Server-side truth from Prometheus /metrics: histogram and counter deltas over a phase.

prometheus_client's parser reads the exposition, handed only the lines of the series below
(a whole vLLM exposition would cost ~30x more); the gauge series scraped during the run, in
the load generator's event loop, reads only the gauges (~0.1 ms a scrape). Fetching happens
in the client's session. Series are summed over label sets (one server may expose several
model names).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from prometheus_client.parser import text_string_to_metric_families

# Our summary key -> vLLM histogram (first name that the server exposes wins).
HISTOGRAMS: Dict[str, Tuple[str, ...]] = {
    "ttft_ms": ("vllm:time_to_first_token_seconds",),
    "e2e_ms": ("vllm:e2e_request_latency_seconds",),
    "queue_ms": ("vllm:request_queue_time_seconds",),
    "itl_ms": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "prefill_ms": ("vllm:request_prefill_time_seconds",),
    "decode_ms": ("vllm:request_decode_time_seconds",),
}
COUNTERS = {
    "output_tokens": "vllm:generation_tokens_total",
    "input_tokens": "vllm:prompt_tokens_total",
}
GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting",
          "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
# vLLM's histograms start at engine arrival (after the HTTP frontend has parsed, templated and
# tokenised) and stop before detokenisation and the SSE write, so the client's means exceed
# the server's by the frontend's work: measured +16 ms TTFT (+48%) and +38 ms E2E (+41%) at
# 4 streams on vLLM CPU (bench/server_agreement.py). That gap is information with its size;
# only a gap beyond FRONTEND_GAP_REL x the server mean and FRONTEND_GAP_ABS_MS, or a client
# below the server, is a disagreement.
AGREEMENT_ABS_MS = 1.0
FRONTEND_GAP_REL = 1.0
FRONTEND_GAP_ABS_MS = 50.0

ALL = tuple(sorted({n for names in HISTOGRAMS.values() for n in names} | set(COUNTERS.values()) | set(GAUGES)))

Samples = Dict[str, List[Tuple[Dict[str, str], float]]]


def parse(text: str, names: Sequence[str] = ALL) -> Samples:
    """{sample name: [(labels, value)]} of the series `names` (histograms: their _bucket, _sum
    and _count); {} when the text is not a valid exposition (no server view then)."""
    lines = tuple(names) + tuple(f"# TYPE {name}" for name in names)
    wanted = "\n".join(line for line in text.splitlines() if line.startswith(lines))
    out: Samples = {}
    try:
        for family in text_string_to_metric_families(wanted):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((sample.labels, sample.value))
    except ValueError:
        return {}
    return out


def _total(samples: Samples, name: str) -> Optional[float]:
    rows = samples.get(name)
    return sum(v for _labels, v in rows) if rows else None


def _buckets(samples: Samples, name: str) -> Dict[float, float]:
    out: Dict[float, float] = {}
    for labels, value in samples.get(name + "_bucket", []):
        le = labels.get("le")
        if le is None:
            continue
        bound = math.inf if le in ("+Inf", "Inf") else float(le)
        out[bound] = out.get(bound, 0.0) + value
    return out


def bucket_quantile(buckets: Dict[float, float], q: float) -> Optional[float]:
    """Prometheus histogram_quantile: linear inside the bucket holding rank q * count."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound  # rank in the open +Inf bucket: best known is its floor
            inside = count - prev_count
            frac = (rank - prev_count) / inside if inside > 0 else 1.0
            return prev_bound + (bound - prev_bound) * frac
        prev_bound, prev_count = bound, count
    return prev_bound


def quantile_bound(buckets: Dict[float, float], q: float) -> Optional[str]:
    """"<=" when rank q falls in the first bucket (only its upper bound is known: anything
    between 0 and it fits), ">=" when in the open +Inf bucket; None when interpolated."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    holder = next((b for b in bounds if buckets[b] >= rank), bounds[-1])
    if math.isinf(holder):
        return ">="
    return "<=" if holder == bounds[0] else None


def delta(before: Samples, after: Samples) -> Dict[str, Any]:
    """Per-phase server view: histogram means/percentiles (ms), token counters, counts."""
    out: Dict[str, Any] = {}
    for key, names in HISTOGRAMS.items():
        name = next((n for n in names if n + "_count" in after), None)
        if name is None:
            continue
        count = (_total(after, name + "_count") or 0.0) - (_total(before, name + "_count") or 0.0)
        total = (_total(after, name + "_sum") or 0.0) - (_total(before, name + "_sum") or 0.0)
        b_after, b_before = _buckets(after, name), _buckets(before, name)
        diff = {b: c - b_before.get(b, 0.0) for b, c in b_after.items()}
        quantiles = {"median": 0.5, "p90": 0.9, "p99": 0.99}
        out[key] = {
            "metric": name,
            "count": int(round(count)),
            "mean": (total / count * 1000.0) if count > 0 else None,
            **{k: _ms(bucket_quantile(diff, q)) for k, q in quantiles.items()},
            # A quantile in the first bucket is reported as that bucket's upper bound with
            # "<=", one in the +Inf bucket as the last finite bound with ">=": interpolating
            # inside them would invent a number (vLLM's first E2E bucket is 0-300 ms).
            "bounds": {k: b for k, q in quantiles.items() if (b := quantile_bound(diff, q))},
        }
        for k, bound in out[key]["bounds"].items():
            if bound == "<=":
                out[key][k] = _ms(min(diff))  # the first bucket's upper bound
    for key, name in COUNTERS.items():
        a, b = _total(after, name), _total(before, name)
        if a is not None:
            out[key] = int(round(a - (b or 0.0)))
    return out


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1000.0


def gauges(samples: Samples) -> Dict[str, float]:
    return {name.split(":", 1)[1]: v for name in GAUGES
            if (v := _total(samples, name)) is not None}


def frontend_gap(client: Dict[str, Any], server: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Client mean minus server mean for TTFT and E2E: the frontend's work, with its size."""
    out = []
    for key in ("ttft_ms", "e2e_ms"):
        c = (client.get(key) or {}).get("mean")
        s = (server.get(key) or {}).get("mean")
        if c is None or s is None:
            continue
        out.append({"metric": key, "client_ms": c, "server_ms": s, "gap_ms": c - s,
                    "gap_share": (c - s) / s if s > 0 else None,
                    "expected": -AGREEMENT_ABS_MS <= c - s <= _gap_limit(s)})
    return out


def _gap_limit(server_ms: float) -> float:
    return max(FRONTEND_GAP_REL * server_ms, FRONTEND_GAP_ABS_MS)


def compare(client: Dict[str, Any], server: Dict[str, Any]) -> List[str]:
    """Disagreements between the client summary and the server's deltas (empty = agree).
    The usual frontend gap is not one (see frontend_gap)."""
    flags: List[str] = []
    for row in frontend_gap(client, server):
        key, c, s, gap = row["metric"], row["client_ms"], row["server_ms"], row["gap_ms"]
        if gap < -AGREEMENT_ABS_MS:
            flags.append(f"{key}: client mean {c:.2f} ms below server {s:.2f} ms "
                         "(clock or accounting error)")
        elif gap > _gap_limit(s):
            flags.append(f"{key}: client mean {c:.2f} ms exceeds server {s:.2f} ms by "
                         f"{gap:.1f} ms, more than the HTTP frontend's usual work "
                         f"(> {FRONTEND_GAP_REL:.0%} and > {FRONTEND_GAP_ABS_MS:g} ms): "
                         "an overloaded client or a slow network path")
    tokens = (client.get("tokens") or {}).get("output_total")
    if tokens is not None and server.get("output_tokens") is not None:
        if tokens != server["output_tokens"]:
            flags.append(f"output tokens: client usage {tokens} != server "
                         f"generation_tokens delta {server['output_tokens']}")
    requests = (client.get("requests") or {}).get("succeeded")
    count = (server.get("e2e_ms") or {}).get("count")
    if requests is not None and count is not None and count != requests:
        flags.append(f"requests: client saw {requests} succeed, server finished {count} "
                     "(other traffic on the server?)")
    return flags
