"""`python -m llmops_gateway --config gateway.json` serves the gateway until SIGTERM/SIGINT."""
from __future__ import annotations

import sys

from llmops_common.service import Prepared
from llmops_common.service import main as serve

from .auth import ApiKeys
from .config import load_config
from .server import create_app


def prepare(path: str) -> Prepared:
    config = load_config(path)
    keys = ApiKeys(config.api_keys_file, config.api_keys_env)
    return Prepared(create_app(config, keys), config.host, config.port,
                    f"gateway -> {config.upstream_url} (API keys {'required' if keys.enabled else 'off'})")


def main(argv: list[str] | None = None) -> int:
    return serve("llmops_gateway", __doc__, prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
