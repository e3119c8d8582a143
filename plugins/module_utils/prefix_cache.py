"""vLLM prefix-cache counters of replicas, and their hit rate over a run (playbooks/compare.yml).

Read from each replica's /metrics: `vllm:prefix_cache_queries` / `vllm:prefix_cache_hits`
(prompt tokens looked up / found cached, counters exposed with _total; vLLM >= 0.8, V1 engine),
else the earlier V1 names `vllm:gpu_prefix_cache_queries` / `vllm:gpu_prefix_cache_hits`
(the same pairs as apps/router/llmops_router/vllm_metrics.parse_prefix_cache). The V0 engine's
`vllm:gpu_prefix_cache_hit_rate` gauge has no counts, so no delta: such a replica reports None.
Values are summed over label sets. No prometheus_client (a module runs on any target).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url

# (queries, hits): the current generation first.
GENERATIONS = (("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"),
               ("vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_hits_total"))
_NAMES = tuple(name for pair in GENERATIONS for name in pair)


def _value(line: str, name: str) -> Optional[float]:
    rest = line[len(name):]
    if rest.startswith("{"):
        end = rest.rfind("}")
        if end < 0:
            return None
        rest = rest[end + 1:]
    elif rest and not rest[0].isspace():
        return None  # a longer name that starts with this one
    parts = rest.split()
    try:
        value = float(parts[0]) if parts else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value


def parse_counters(text: str) -> Optional[Dict[str, float]]:
    """{"queries", "hits"} of the first counter generation the exposition has; None: neither."""
    found: Dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(_NAMES):
            continue
        for name in _NAMES:
            if line.startswith(name):
                value = _value(line, name)
                if value is not None:
                    found[name] = found.get(name, 0.0) + value
    for queries, hits in GENERATIONS:
        if queries in found:
            return {"queries": found[queries], "hits": found.get(hits, 0.0)}
    return None


def metrics_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/metrics") else url + "/metrics"


def scrape(urls: List[str], timeout: float = 5.0) -> Dict[str, Optional[Dict[str, float]]]:
    """{url: counters or None (unreachable, or no prefix-cache counters)} per replica."""
    out: Dict[str, Optional[Dict[str, float]]] = {}
    for url in urls:
        try:
            response = open_url(metrics_url(url), timeout=timeout)
            try:
                out[url] = parse_counters(response.read().decode("utf-8", "replace"))
            finally:
                response.close()
        except (OSError, ValueError, UrlConnectionError):
            out[url] = None
    return out


def delta(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, Any]:
    """Hits/queries over the run per replica and in total; hit_rate_pct None without queries.
    A replica missing from either scrape, or whose counters went down (it restarted), is left
    out of the total and listed under `skipped`."""
    replicas: Dict[str, Any] = {}
    skipped: List[str] = []
    total_q = total_h = 0.0
    for url in sorted(set(before) | set(after)):
        b, a = before.get(url), after.get(url)
        if not b or not a or a["queries"] < b["queries"] or a["hits"] < b["hits"]:
            skipped.append(url)
            continue
        q, h = a["queries"] - b["queries"], a["hits"] - b["hits"]
        replicas[url] = {"queries": q, "hits": h, "hit_rate_pct": 100.0 * h / q if q > 0 else None}
        total_q, total_h = total_q + q, total_h + h
    return {"queries": total_q, "hits": total_h,
            "hit_rate_pct": 100.0 * total_h / total_q if total_q > 0 else None,
            "replicas": replicas, "skipped": skipped}


def write(path: str, data: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
