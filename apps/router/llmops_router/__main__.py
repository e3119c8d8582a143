"""`python -m llmops_router --config router.json` runs the router until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging
import resource
import sys

from aiohttp import web

from .config import ConfigError, load_config
from .server import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops_router", description=__doc__)
    parser.add_argument("--config", required=True, help="JSON or YAML file (see apps/router/README.md)")
    parser.add_argument("--host", help="override the config's host")
    parser.add_argument("--port", type=int, help="override the config's port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except (OSError, ConfigError) as exc:
        print(f"llmops_router: bad config: {exc}", file=sys.stderr)
        return 2
    # One socket to the client and one to the replica per stream: the default soft limit
    # (often 1024) would cap the router near 500 concurrent streams.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    logging.getLogger("llmops_router").info(
        "routing %d model(s) with policy %s on %s:%d", len(config.models), config.policy, host, port)
    # access_log off: a log line per request costs more than the routing itself.
    web.run_app(create_app(config), host=host, port=port, access_log=None, backlog=4096,
                print=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
