"""`python -m llmops_router --config router.json` runs the router until SIGTERM/SIGINT."""
from __future__ import annotations

import sys

from llmops_common.service import Prepared
from llmops_common.service import main as serve

from .config import load_config
from .server import create_app


def prepare(path: str) -> Prepared:
    config = load_config(path)
    return Prepared(create_app(config), config.host, config.port,
                    f"routing {len(config.models)} model(s) with policy {config.policy}")


def main(argv: list[str] | None = None) -> int:
    return serve("llmops_router", __doc__, prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
