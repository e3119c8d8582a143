"""results.json + requests.jsonl: the durable record of a run (schema_version "1")."""
from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from . import ENGINE_VERSION
from .metrics import summarize
from .records import RunResult

SCHEMA_VERSION = "1"
RESULTS_FILE = "results.json"
REQUESTS_FILE = "requests.jsonl"


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).isoformat(timespec="milliseconds")


def _versions() -> Dict[str, str]:
    versions = {"engine": ENGINE_VERSION, "python": platform.python_version()}
    try:  # the client needs aiohttp, a report re-render does not
        import aiohttp
        versions["aiohttp"] = aiohttp.__version__
    except ImportError:
        pass
    return versions


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
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be read and served
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
