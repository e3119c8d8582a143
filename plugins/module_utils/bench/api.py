"""Run a benchmark and write every output: the one entry point of the module and the CLI.

Both faces call `run_to_dir`, so the same options produce the same summary either way.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

from .config import BenchConfig
from .report import write_run_report
from .results import build_engine_results, save_results

REPORT_FILE = "report.html"


def run_to_dir(config: BenchConfig, output_dir: str, counters: Any = None,
               on_step: Optional[Callable[[Dict[str, Any]], None]] = None,
               progress_file: Optional[str] = None) -> Dict[str, Any]:
    """Run every step of the configured profile; write results.json, requests.jsonl,
    report.html. Returns {"results": dict, "paths": {...}}.

    `progress_file`: a line every 2 s and one per finished step go there (a playbook task is
    silent until it ends; `tail -f` this file meanwhile)."""
    from .client import Counters
    from .engine import execute  # late: needs aiohttp

    if progress_file is None:
        engine = execute(config, counters, on_step)
    else:
        from .progress import Progress
        os.makedirs(os.path.dirname(os.path.abspath(progress_file)), exist_ok=True)
        counters = counters or Counters(config.num_requests)
        with open(progress_file, "w", encoding="utf-8", buffering=1) as stream:
            progress = Progress(counters, stream, every_s=0.5, plain_every_s=2.0)

            def step_done(summary: Dict[str, Any]) -> None:
                progress.step_done(summary)
                if on_step:
                    on_step(summary)
            with progress:
                engine = execute(config, counters, step_done)
            stream.write("finished\n")
    results = build_engine_results(engine)
    paths = save_results(results, output_dir)
    paths["report"] = write_run_report(results, output_dir)
    return {"results": results, "paths": paths}
