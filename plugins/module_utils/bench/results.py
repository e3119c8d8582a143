"""results.json + requests.jsonl: the durable record of a run (schema_version "1")."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.llmops.platform.plugins.module_utils.files import atomic_write

from . import ENGINE_VERSION
from .metrics import summarize
from .records import RunResult

SCHEMA_VERSION = "1"
RESULTS_FILE = "results.json"
REQUESTS_FILE = "requests.jsonl"
STEPS_CSV = "steps.csv"


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).isoformat(timespec="milliseconds")


SUMMARY_SCHEMA = "llmops.platform/bench-summary/v1"


def _versions() -> Dict[str, str]:
    versions = {"engine": ENGINE_VERSION, "python": platform.python_version(),
                "summary_schema": SUMMARY_SCHEMA}
    for name in ("aiohttp", "tokenizers"):  # optional: a report re-render needs neither
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


_STEP_KEYS = ("valid", "invalid_reasons", "duration_s")


def _step_row(summary: Dict[str, Any]) -> Dict[str, Any]:
    """Compact per-step line for the summary (full step summaries live in results.steps)."""
    gp = summary.get("goodput") or {}
    sched = summary.get("schedule") or {}
    return {
        **{k: summary.get(k) for k in _STEP_KEYS},
        **{k: summary["step"].get(k) for k in ("index", "label", "profile", "rate", "concurrency")},
        "achieved_rate": sched.get("achieved_rate"),
        "requests_per_s": summary["throughput"]["requests_per_s"],
        "output_tokens_per_s": summary["throughput"]["output_tokens_per_s"],
        "ttft_ms": {k: summary["ttft_ms"].get(k) for k in ("mean", "median", "p90", "p99")},
        "tpot_ms": {k: summary["tpot_ms"].get(k) for k in ("mean", "median", "p90", "p99")},
        "e2e_ms": {k: summary["e2e_ms"].get(k) for k in ("mean", "median", "p90", "p99")},
        "dispatch_lag_p99_ms": (sched.get("dispatch_lag_ms") or {}).get("p99"),
        "goodput_share": gp.get("share"),
        "succeeded": summary["requests"]["succeeded"],
        "failed": summary["requests"]["failed"],
    }


def build_engine_results(engine: Any) -> Dict[str, Any]:
    """results.json for a whole engine run: headline summary, every step, every request."""
    from .engine import headline, slo_best  # late: engine imports aiohttp

    config = engine.config
    head = headline(engine.steps)
    summary: Dict[str, Any] = dict(head.summary) if head else {}
    reasons: List[str] = []
    for step in engine.steps:
        label = step.plan["label"]
        reasons += [r if len(engine.steps) == 1 else f"{label}: {r}"
                    for r in step.summary.get("invalid_reasons", [])]
    if not engine.steps:
        reasons.append("no step ran")
    summary.update({
        "schema": SUMMARY_SCHEMA,
        "profile": config.profile,
        "valid": not reasons,
        "invalid_reasons": reasons,
        "steps": [_step_row(s.summary) for s in engine.steps],
        "headline_step": head.index if head else None,
        "notes": [engine.stopped_reason] if engine.stopped_reason else [],
        "server_metrics_available": bool(engine.metrics_available),
        "warmup_completed": engine.warmup_completed,
    })
    if config.profile == "slo_search":
        best = slo_best(engine.steps)
        summary["slo_search"] = {"target": config.slo_target, "slos": config.slos,
                                 "best_rate": best[0] if best else None}
    started = min((r.started_wall for s in engine.steps for r in s.repeats), default=0.0)
    ended = max((r.ended_wall for s in engine.steps for r in s.repeats), default=0.0)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "llmops.platform/bench-run",
        "versions": _versions(),
        "started": _iso(started),
        "ended": _iso(ended),
        "duration_s": sum(s.summary.get("duration_s") or 0.0 for s in engine.steps),
        "warmup_completed": engine.warmup_completed,
        "seeds": {"prompts": config.seed, "arrivals": config.seed, "scenario": config.seed},
        "client_args": config.to_dict(redact=True),
        "server_args": dict(config.server_args),
        "server_info": getattr(engine, "server_info", None),
        "config": config.to_dict(redact=True),  # never the API key
        "summary": summary,
        "steps": [s.summary for s in engine.steps],
        "series": [{"step": s.index, "samples": s.series} for s in engine.steps if s.series],
        "prometheus": getattr(engine, "prometheus", None),
        "records": [r.to_dict() for s in engine.steps for res in s.repeats for r in res.records],
    }


def build_results(run_result: RunResult,
                  summary: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "llmops.platform/bench-run",
        "versions": _versions(),
        "started": _iso(run_result.started_wall),
        "ended": _iso(run_result.ended_wall),
        "duration_s": run_result.duration_s,
        "warmup_completed": run_result.warmup_completed,
        "config": run_result.config.to_dict(redact=True),  # never the API key
        "summary": summary if summary is not None else summarize(run_result),
        "records": [r.to_dict() for r in run_result.records],
    }


def _atomic_write(path: str, lines: Iterable[str]) -> None:
    # A half-written results.json would break every later index render: write, then rename.
    atomic_write(path, "".join(lines))


def write_text(path: str, text: str) -> None:
    _atomic_write(path, [text])


def write_json(path: str, data: Any) -> None:
    _atomic_write(path, [json.dumps(data, indent=2, allow_nan=False), "\n"])


def write_results(run_result: RunResult, output_dir: str,
                  summary: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write results.json and requests.jsonl into output_dir; returns their paths."""
    return save_results(build_results(run_result, summary), output_dir)


def save_results(results: Dict[str, Any], output_dir: str) -> Dict[str, str]:
    """Write an already-built results dict (see build_results) into output_dir."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {"results": os.path.join(output_dir, RESULTS_FILE),
             "requests": os.path.join(output_dir, REQUESTS_FILE)}
    write_json(paths["results"], results)
    if (results.get("summary") or {}).get("steps"):
        from .csvout import render, rows
        paths["steps_csv"] = os.path.join(output_dir, STEPS_CSV)
        write_text(paths["steps_csv"], render(rows(os.path.basename(os.path.dirname(
            os.path.abspath(paths["results"]))), results)))
    _atomic_write(paths["requests"],
                  (json.dumps(r, allow_nan=False) + "\n" for r in results["records"]))
    return paths


def load_results(path: str) -> Dict[str, Any]:
    """Load a results.json (file or the directory holding it); rejects unknown schemas."""
    if os.path.isdir(path):
        path = os.path.join(path, RESULTS_FILE)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else None
        raise ValueError(f"{path}: schema_version {found!r} is not {SCHEMA_VERSION!r}")
    return data


def load_requests(path: str) -> List[Dict[str, Any]]:
    if os.path.isdir(path):
        path = os.path.join(path, REQUESTS_FILE)
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
