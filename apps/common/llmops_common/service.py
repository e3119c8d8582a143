"""The aiohttp application around an app's service object, and the process entry point both
apps use: `python -m llmops_<app> --config FILE`, served until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from typing import Any, Awaitable, Callable, Iterable, NamedTuple

from aiohttp import web

from .errors import not_found

# app[SERVICE]: the Router or Gateway object behind the routes (tests reach it through this).
SERVICE: web.AppKey[Any] = web.AppKey("service")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application(service: Any, name: str, routes: Iterable[tuple[str, str, Handler]],
                client_max_size: int) -> web.Application:
    """`routes` ((method, path, handler)...) plus GET /metrics from service.metrics, and an
    OpenAI-shaped 404 for every other path; service.start/stop run with the app."""
    async def metrics(_request: web.Request) -> web.Response:
        return service.metrics.response()

    app = web.Application(client_max_size=client_max_size)
    app[SERVICE] = service
    app.on_startup.append(service.start)
    app.on_cleanup.append(service.stop)
    for method, path, handler in [*routes, ("GET", "/metrics", metrics)]:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/{tail:.*}", not_found(name))
    return app


class Prepared(NamedTuple):
    app: web.Application
    host: str
    port: int
    summary: str  # one log line on what it serves


def raise_open_files_limit() -> None:
    # Two sockets per stream (client and upstream): the default soft limit (often 1024)
    # would cap a proxy near 500 concurrent streams.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(prog: str, description: str, prepare: Callable[[str], Prepared], argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="JSON or YAML file (see the app's README.md)")
    parser.add_argument("--host", help="override the config's host")
    parser.add_argument("--port", type=int, help="override the config's port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        served = prepare(args.config)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"{prog}: bad config: {exc}", file=sys.stderr)
        return 2
    raise_open_files_limit()
    host = args.host or served.host
    port = args.port if args.port is not None else served.port
    logging.getLogger(prog).info("%s on %s:%d", served.summary, host, port)
    # access_log off: a log line per request costs more than the proxying itself.
    web.run_app(served.app, host=host, port=port, access_log=None, backlog=4096, print=None, shutdown_timeout=5,
                loop=event_loop())
    return 0


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (the serving venv and the router image have it; it spends about
    half of asyncio's CPU per callback, the proxy's hot path); else asyncio's own loop."""
    try:
        import uvloop  # pylint: disable=import-outside-toplevel
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop
