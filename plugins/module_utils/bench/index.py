"""reports/index.html and reports/runs.csv: one builder for the llm_report module and the CLI.

The index also lists parameter sweeps (reports/sweeps/<task>/sweep.json) from the tuner and
routing comparisons (reports/compare/<run>/comparison.html) and fine-tuning evaluations
(reports/finetune/<run>/eval.json).
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from .csvout import render, rows
from .report import INDEX_FILE, discover_runs, render_index_entries
from .results import write_text

CSV_FILE = "runs.csv"
DEFAULT_TITLE = "LLM benchmark reports"


def index_pages(root: str, title: str = DEFAULT_TITLE) -> Tuple[Dict[str, str], int, List[str]]:
    """({path: text} for the index and the CSV, number of runs, unreadable results)."""
    from ..compare import render_index_section as compare_section  # late: optional sections
    from ..finetune.report import render_index_section as finetune_section
    from ..tune.output import render_index_section as sweeps_section

    entries, problems = discover_runs(root)
    index = render_index_entries(entries, problems, title=title,
                                 extra_html=sweeps_section(root) + compare_section(root)
                                 + finetune_section(root))
    csv = render(row for e in reversed(entries) for row in rows(e["dir"], e["results"]))
    pages = {os.path.join(root, INDEX_FILE): index, os.path.join(root, CSV_FILE): csv}
    return pages, len(entries), problems


def write_index(root: str, title: str = DEFAULT_TITLE, check: bool = False) -> Dict[str, object]:
    """Write the pages that differ; returns changed, paths, runs, unreadable."""
    if not os.path.isdir(root) and not check:
        os.makedirs(root, exist_ok=True)
    pages, runs, problems = index_pages(root, title) if os.path.isdir(root) else ({}, 0, [])
    changed = not os.path.isdir(root)
    for path, text in pages.items():
        try:
            with open(path, encoding="utf-8") as handle:
                differs = handle.read() != text
        except FileNotFoundError:
            differs = True
        if differs and not check:
            write_text(path, text)
        changed = changed or differs
    return {"changed": changed, "index_path": os.path.join(root, INDEX_FILE),
            "csv_path": os.path.join(root, CSV_FILE), "runs": runs, "unreadable": problems}
