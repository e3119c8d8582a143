"""`python -m llmops_gateway --config gateway.json` serves the gateway until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging
import resource
import sys

import uvicorn

from .auth import ApiKeys
from .config import ConfigError, load_config
from .server import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops_gateway", description=__doc__)
    parser.add_argument("--config", required=True, help="JSON or YAML file (see apps/gateway/README.md)")
    parser.add_argument("--host", help="override the config's host")
    parser.add_argument("--port", type=int, help="override the config's port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        keys = ApiKeys(config.api_keys_file, config.api_keys_env)
    except (OSError, ConfigError, UnicodeDecodeError) as exc:
        print(f"llmops_gateway: bad config: {exc}", file=sys.stderr)
        return 2
    # Two sockets per stream (client and upstream): lift the soft file limit like the router does.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    logging.getLogger("llmops_gateway").info("gateway on %s:%d -> %s (API keys %s)", host, port, config.upstream_url,
                                             "required" if keys.enabled else "off")
    uvicorn.run(create_app(config, keys), host=host, port=port, log_level=args.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=5, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
