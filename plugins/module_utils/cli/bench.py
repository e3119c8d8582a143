"""`llmops bench --base-url URL [--model NAME] [options]`: the benchmark engine from a shell.

Options are generated from BenchConfig and documented from llm_benchmark's DOCUMENTATION,
so the CLI, the module and playbooks/bench.yml accept the same settings, say the same about
them and produce the same summary (both faces call bench.api.run_to_dir). `vllm bench serve`
and guidellm spellings work too (--request-rate, --num-prompts, --max-concurrency,
--max-seconds). A live progress line goes to stderr; the summary JSON to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import textwrap
import time
import types
import typing
import urllib.request
from typing import Any, Dict, List, Optional

EXIT_INVALID = 3
EXIT_USAGE = 2
DEFAULT_REPORTS = "reports"
# Other tools' names for our options: {our option: [their flags]}.
ALIASES = {"num_requests": ["--num-prompts", "--max-requests"], "rate": ["--request-rate"]}
# Options whose CLI flag is not the option's name.
FLAG_NAMES = {"profile": "--load-profile"}
# What the flag does beyond the module option (shell-only behaviour).
CLI_EXTRA = {
    "base_url": " Required.",
    "model": " Default: the first model the server lists at /v1/models.",
    "api_key": " Default: $LLMOPS_API_KEY, else $OPENAI_API_KEY.",
    "max_concurrency": " Without --rate or --load-profile (vllm bench serve's habit): that many "
                       "closed-loop streams.",
    "rate": " Without --load-profile: Poisson arrivals; inf sends everything at once.",
}
# Shown as a hint, never as the value (help must not print a key from the environment).
SECRET = {"api_key", "headers"}


def _fields() -> list:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
    hints = typing.get_type_hints(BenchConfig)
    return [(f, hints[f.name]) for f in dataclasses.fields(BenchConfig)]


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Union:  # Optional[X] / Union[X, List[X]]: look at X
        hint = next(a for a in typing.get_args(hint) if a is not types.NoneType)
    origin = typing.get_origin(hint) or hint
    return {bool: "bool", int: "int", float: "float", str: "str", dict: "dict",
            list: "list"}.get(origin, "str")


def _docs() -> Dict[str, Dict[str, Any]]:
    """The module's option docs: one text for `ansible-doc` and `llmops bench --help`."""
    import yaml

    from ansible_collections.llmops.platform.plugins.modules import llm_benchmark
    return yaml.safe_load(llm_benchmark.DOCUMENTATION)["options"]


def _plain(text: Any) -> str:
    """Ansible doc markup (C(x), O(x), I(x)) as plain text; argparse '%' escaped."""
    text = " ".join(text) if isinstance(text, list) else str(text)
    return re.sub(r"\b[CIOVBL]\(((?:[^()]|\([^()]*\))*)\)", r"\1", text).replace("%", "%%")


def _help(name: str, docs: Dict[str, Dict[str, Any]], extra: str = "") -> str:
    doc = docs.get(name, {})
    text = _plain(doc.get("description", "")) + extra
    default = doc.get("default")
    if name in SECRET:
        return text
    if default not in (None, {}, []):
        shown = ",".join(f"{v:g}" for v in default) if isinstance(default, list) else default
        text += f" (default: {str(shown).lower() if isinstance(shown, bool) else shown})"
    return text


def _numbers(kind: type):
    def parse(value: str):
        items = [kind(float(v)) if kind is int else float(v) for v in value.split(",") if v.strip()]
        return items[0] if len(items) == 1 else items
    return parse


def _header(value: str) -> List[str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: use NAME:VALUE, e.g. X-Tenant:team-a")
    return [name.strip(), content.strip()]


def register(subparsers: "argparse._SubParsersAction") -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark an OpenAI-compatible endpoint (same engine as llm_benchmark)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="\n\n".join(textwrap.fill(t, 88) for t in (
            "Runs the llm_benchmark engine. Every option of the module is a flag here "
            "(underscores become dashes; see docs/benchmark.md).",
            "vllm bench serve / guidellm users: --request-rate R (Poisson arrivals, inf = all "
            "at once), --num-prompts N, --max-concurrency N (alone: N closed-loop streams), "
            "--max-seconds S. Several values (--concurrency 1,4,16,64 or --request-rate 2,4,8) "
            "run one load step each and draw a load curve.",
            "The API key comes from --api-key, LLMOPS_API_KEY or OPENAI_API_KEY; the model, "
            "when not given, from the server's /v1/models.")))
    docs = _docs()
    for f, hint in _fields():
        flags = [FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))] + ALIASES.get(f.name, [])
        kind = _kind(hint)
        help_text = _help(f.name, docs, CLI_EXTRA.get(f.name, ""))
        if f.name in ("concurrency", "rate"):
            p.add_argument(*flags, dest=f.name, metavar="N[,N...]", help=help_text,
                           type=_numbers(int if f.name == "concurrency" else float))
        elif f.name == "headers":
            p.add_argument("--header", "-H", dest="headers", action="append", type=_header,
                           metavar="NAME:VALUE", help=help_text + " Repeatable.")
        elif kind == "bool":
            p.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        elif kind == "dict":
            p.add_argument(*flags, dest=f.name, type=json.loads, metavar="JSON",
                           help=help_text + " As a JSON object.")
        elif kind == "list":
            p.add_argument(*flags, dest=f.name, metavar="Q[,Q...]", help=help_text,
                           type=lambda v: [float(x) for x in v.split(",") if x.strip()])
        else:
            choices = docs.get(f.name, {}).get("choices")
            p.add_argument(*flags, dest=f.name, type={"int": int, "float": float}.get(kind, str),
                           choices=choices, help=help_text)
    p.add_argument("--profile", dest="profile_deprecated", choices=docs["profile"]["choices"],
                   help="deprecated alias of --load-profile (vllm bench serve's --profile is its "
                        "torch profiler)")
    p.add_argument("--options", metavar="FILE", help="JSON or YAML file of options (flags win)")
    p.add_argument("--output-dir", "-o",
                   help=f"where results go (default: {DEFAULT_REPORTS}/<UTC time>/<model>)")
    p.add_argument("--report-root", metavar="DIR",
                   help="rebuild DIR/index.html after the run (default: the reports directory "
                        "when --output-dir is not given)")
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
    if getattr(args, "profile_deprecated", None):
        print("llmops bench: --profile is deprecated, use --load-profile", file=sys.stderr)
        if args.profile is None:
            args.profile = args.profile_deprecated
    for f, _hint in _fields():
        value = getattr(args, f.name, None)
        if value is not None:
            options[f.name] = dict(value) if f.name == "headers" else value
    _vllm_habits(options, explicit_profile=args.profile is not None or "profile" in options)
    if options.get("api_key") is None:
        # From the environment: keeps the key out of `ps` and shell history.
        key = os.environ.get("LLMOPS_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if key:
            options["api_key"] = key
    return options


def _vllm_habits(options: Dict[str, Any], explicit_profile: bool) -> None:
    """What `vllm bench serve` means by the same flags, when no load profile was chosen:
    a request rate is Poisson arrivals (inf: everything at once) and --max-concurrency alone
    is that many closed-loop streams."""
    if explicit_profile:
        return
    rate = options.get("rate")
    rates = rate if isinstance(rate, list) else [rate]
    if rate is not None and all(math.isinf(r) for r in rates):
        options.pop("rate")
        options["profile"] = "throughput"
    elif rate is not None:
        options["profile"] = "poisson"
    elif options.get("max_concurrency") is not None and "concurrency" not in options:
        options["concurrency"] = options.pop("max_concurrency")


def detect_model(base_url: str, api_key: Optional[str], timeout_s: float = 5.0) -> str:
    """The first model the server lists at /v1/models (what `vllm bench serve` does too)."""
    request = urllib.request.Request(base_url.rstrip("/") + "/v1/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=timeout_s) as resp:
            data = json.loads(resp.read())
        models = [m["id"] for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"model: not given and {base_url}/v1/models did not answer ({exc}); "
                         "pass --model NAME") from None
    if not models:
        raise ValueError(f"model: not given and {base_url}/v1/models lists none; pass --model NAME")
    return models[0]


def run(args: argparse.Namespace) -> int:
    from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (
        BenchConfig,
        BenchConfigError,
    )
    try:
        options = _options(args)
        if not options.get("model") and options.get("base_url") and not args.check:
            options["model"] = detect_model(options["base_url"], options.get("api_key"))
            print(f"llmops bench: model {options['model']} (from /v1/models)", file=sys.stderr)
        elif not options.get("model") and args.check:
            options["model"] = "<from /v1/models>"
        config = BenchConfig.from_dict(options)
    except (BenchConfigError, OSError, ValueError) as exc:
        print(f"llmops bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"options ok: profile {config.profile}, {config.url}")
        return 0
    from ansible_collections.llmops.platform.plugins.module_utils.bench.api import run_to_dir
    from ansible_collections.llmops.platform.plugins.module_utils.bench.client import Counters
    from ansible_collections.llmops.platform.plugins.module_utils.bench.index import write_index
    from ansible_collections.llmops.platform.plugins.module_utils.bench.progress import Progress

    output = args.output_dir or os.path.join(
        DEFAULT_REPORTS, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), config.model)
    report_root = args.report_root or (None if args.output_dir else DEFAULT_REPORTS)
    counters = Counters(config.num_requests)
    progress: Optional[Progress] = None if args.quiet else Progress(counters)
    try:
        if progress:
            with progress:
                done = run_to_dir(config, output, counters, progress.step_done)
        else:
            done = run_to_dir(config, output, counters)
        if report_root:
            done["paths"]["index"] = write_index(report_root)["index_path"]
    except (OSError, ValueError) as exc:
        print(f"llmops bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summary = done["results"]["summary"]
    print(json.dumps({"valid": summary["valid"], "invalid_reasons": summary["invalid_reasons"],
                      "notes": summary.get("notes") or [],
                      "requests_per_s": summary["throughput"]["requests_per_s"],
                      "ttft_ms_median": summary["ttft_ms"]["median"],
                      "e2e_ms_p99": summary["e2e_ms"]["p99"], **done["paths"]}, indent=2))
    return EXIT_INVALID if args.fail_on_invalid and not summary["valid"] else 0
