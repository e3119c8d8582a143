"""Run a benchmark and write every output: the one entry point of the module and the CLI.

Both faces call `run_to_dir`, so the same options produce the same summary either way.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from .config import BenchConfig
from .report import write_run_report
from .results import build_engine_results, save_results

REPORT_FILE = "report.html"


def run_to_dir(config: BenchConfig, output_dir: str, counters: Any = None,
               on_step: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Run every step of the configured profile; write results.json, requests.jsonl,
    report.html. Returns {"results": dict, "paths": {...}}."""
    from .engine import execute  # late: needs aiohttp

    engine = execute(config, counters, on_step)
    results = build_engine_results(engine)
    paths = save_results(results, output_dir)
    paths["report"] = write_run_report(results, output_dir)
    return {"results": results, "paths": paths}
