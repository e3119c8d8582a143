"""`llmops <subcommand>`: discovers subcommand modules so they can be added independently.

A subcommand module (cli/<name>.py) defines `register(subparsers)`, which adds its parser
and sets `func` (args -> exit code). Modules whose imports fail are listed, not fatal, so one
broken subcommand never takes the others down.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

PACKAGE = "ansible_collections.llmops.platform.plugins.module_utils.cli"
NOT_SUBCOMMANDS = {"main"}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    parser = argparse.ArgumentParser(prog="llmops", description="llmops.platform engine commands")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    broken: dict[str, str] = {}
    package = importlib.import_module(PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in NOT_SUBCOMMANDS or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{PACKAGE}.{info.name}")
        except ImportError as exc:
            broken[info.name] = str(exc)
            continue
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser, broken


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser, broken = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        for name, why in broken.items():
            print(f"(subcommand {name} unavailable: {why})", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
