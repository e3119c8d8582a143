"""Runs fake upstreams (tests/fakes/fake_openai.py) and gateway instances on one background
event loop (loopback), so tests talk to real sockets with plain urllib/aiohttp clients."""
from __future__ import annotations

import asyncio
import threading

from aiohttp import web
from fake_openai import FakeOpenAI, start

from llmops_gateway.auth import ApiKeys
from llmops_gateway.config import parse_config
from llmops_gateway.server import create_app


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _start(self, app) -> int:
        runner, port = self.run(start(app))
        self.runners.append(runner)
        return port

    def start_upstream(self, upstream: FakeOpenAI) -> str:
        self._start(upstream)
        return upstream.url

    def start_gateway(self, raw_config: dict, keys: ApiKeys | None = None) -> int:
        return self._start(create_app(parse_config(raw_config), keys))

    def stop(self) -> None:
        for runner in reversed(self.runners):  # gateways first, then what they stand in front of
            self.run(runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
