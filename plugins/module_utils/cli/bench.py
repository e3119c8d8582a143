"""`llmops bench --base-url URL --model NAME [options]`: the benchmark engine from a shell.

Options are generated from BenchConfig, so the CLI, the llm_benchmark module and
playbooks/bench.yml accept the same settings and produce the same summary (both faces call
bench.api.run_to_dir). A live progress line goes to stderr; the summary JSON to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
import types
import typing
from typing import Any, Dict, Optional

EXIT_INVALID = 3
EXIT_USAGE = 2


def _fields() -> list:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
    hints = typing.get_type_hints(BenchConfig)
    return [(f, hints[f.name]) for f in dataclasses.fields(BenchConfig)]


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Union:  # Optional[X]: look at X
        hint = next(a for a in typing.get_args(hint) if a is not types.NoneType)
    origin = typing.get_origin(hint) or hint
    return {bool: "bool", int: "int", float: "float", str: "str", dict: "dict",
            list: "list"}.get(origin, "str")


def register(subparsers: "argparse._SubParsersAction") -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark an OpenAI-compatible endpoint (same engine as llm_benchmark)",
        description="Runs the llm_benchmark engine. Every option of the module is a flag "
                    "here (underscores become dashes); see docs/benchmark.md.")
    for f, hint in _fields():
        flag = "--" + f.name.replace("_", "-")
        kind = _kind(hint)
        if kind == "bool":
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        elif kind == "dict":
            p.add_argument(flag, dest=f.name, type=json.loads, metavar="JSON",
                           help="JSON object")
        elif kind == "list":
            p.add_argument(flag, dest=f.name, metavar="Q,Q,...",
                           type=lambda v: [float(x) for x in v.split(",") if x.strip()])
        else:
            p.add_argument(flag, dest=f.name, type={"int": int, "float": float}.get(kind, str))
    p.add_argument("--options", metavar="FILE", help="JSON or YAML file of options (flags win)")
    p.add_argument("--output-dir", "-o", help="where results go (default reports/<UTC time>/<model>)")
    p.add_argument("--fail-on-invalid", action="store_true",
                   help=f"exit {EXIT_INVALID} when the run is invalid")
    p.add_argument("--quiet", "-q", action="store_true", help="no live progress display")
    p.add_argument("--check", action="store_true", help="validate the options and exit")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if args.options:
        with open(args.options, encoding="utf-8") as handle:
            text = handle.read()
        try:
            options = json.loads(text)
        except ValueError:
            import yaml  # only for YAML option files
            options = yaml.safe_load(text) or {}
    for f, _kind in _fields():
        value = getattr(args, f.name, None)
        if value is not None:
            options[f.name] = value
    if options.get("api_key") is None and os.environ.get("LLMOPS_API_KEY"):
        options["api_key"] = os.environ["LLMOPS_API_KEY"]  # keeps the key out of `ps`
    return options


class Progress:
    """A live line on stderr: step, sent/done/failed, in flight, rate. Thread-driven so the
    engine's event loop never spends time on the display."""

    def __init__(self, counters: Any, stream: Any = sys.stderr, every_s: float = 0.5) -> None:
        self.counters, self.stream, self.every_s = counters, stream, every_s
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()

    def line(self) -> str:
        c = self.counters
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"[{elapsed:6.1f}s] {c.label or 'starting':<28} sent {c.sent:>6} done {c.done:>6}"
                f" failed {c.failed:>4} in flight {c.in_flight:>5} ~{c.done / elapsed:7.1f} req/s")

    def _loop(self) -> None:
        last_plain = 0.0
        while not self.stop.wait(self.every_s):
            if self.tty:
                self.stream.write("\r" + self.line())
                self.stream.flush()
            elif time.monotonic() - last_plain >= 5.0:  # logs: one line every 5 s
                last_plain = time.monotonic()
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def step_done(self, summary: Dict[str, Any]) -> None:
        step = summary.get("step", {})
        thr = summary["throughput"]["requests_per_s"]
        ttft = summary["ttft_ms"].get("median")
        self.stream.write(("\r" if self.tty else "") +
                          f"step {step.get('index')}: {step.get('label')}: "
                          f"{thr or 0:.2f} req/s, TTFT p50 {ttft or 0:.1f} ms, "
                          f"{'valid' if summary['valid'] else 'INVALID'}\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")


def run(args: argparse.Namespace) -> int:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (
        BenchConfig,
        BenchConfigError,
    )
    try:
        config = BenchConfig.from_dict(_options(args))
    except (BenchConfigError, OSError, ValueError) as exc:
        print(f"llmops bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"options ok: profile {config.profile}, {config.url}")
        return 0
    from ansible_collections.llmops.platform.plugins.module_utils.bench.api import run_to_dir
    from ansible_collections.llmops.platform.plugins.module_utils.bench.client import Counters

    output = args.output_dir or os.path.join(
        "reports", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), config.model)
    counters = Counters(config.num_requests)
    progress: Optional[Progress] = None if args.quiet else Progress(counters)
    try:
        if progress:
            with progress:
                done = run_to_dir(config, output, counters, progress.step_done)
        else:
            done = run_to_dir(config, output, counters)
    except (OSError, ValueError) as exc:
        print(f"llmops bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summary = done["results"]["summary"]
    print(json.dumps({"valid": summary["valid"], "invalid_reasons": summary["invalid_reasons"],
                      "requests_per_s": summary["throughput"]["requests_per_s"],
                      "ttft_ms_median": summary["ttft_ms"]["median"],
                      "e2e_ms_p99": summary["e2e_ms"]["p99"], **done["paths"]}, indent=2))
    return EXIT_INVALID if args.fail_on_invalid and not summary["valid"] else 0
