"""`llmops report [--report-root DIR]`: rebuild DIR/index.html and runs.csv from the results there."""
from __future__ import annotations

import argparse
import json


def register(subparsers: "argparse._SubParsersAction") -> None:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.index import DEFAULT_TITLE

    p = subparsers.add_parser("report", help="rebuild the report index (index.html, runs.csv)",
                              description="Rebuilds <report root>/index.html and runs.csv from every "
                                          "results.json below it (benchmark runs, sweeps, comparisons), "
                                          "as the llm_report module does.")
    p.add_argument("--report-root", "-r", default="reports", metavar="DIR",
                   help="the reports directory (default: reports)")
    p.add_argument("--title", default=DEFAULT_TITLE, help=f"page title (default: {DEFAULT_TITLE})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.index import write_index

    done = write_index(args.report_root, args.title)
    print(json.dumps(done, indent=2))
    return 0
