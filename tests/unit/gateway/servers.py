"""Runs fake upstreams (tests/fakes/fake_openai.py) and gateway instances on one background
event loop (loopback), so tests talk to real sockets with plain urllib/aiohttp clients."""
from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from aiohttp import web

from fake_openai import FakeOpenAI, free_port, start
from llmops_gateway.auth import ApiKeys
from llmops_gateway.config import parse_config
from llmops_gateway.server import create_app


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[uvicorn.Server] = []
        self.runners: list[web.AppRunner] = []

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_upstream(self, upstream: FakeOpenAI) -> str:
        runner, _port = self.run(start(upstream))
        self.runners.append(runner)
        return upstream.url

    def start_gateway(self, raw_config: dict, keys: ApiKeys | None = None) -> int:
        port = free_port()
        config = parse_config({**raw_config, "port": port})
        server = uvicorn.Server(uvicorn.Config(create_app(config, keys), host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False, lifespan="on"))
        asyncio.run_coroutine_threadsafe(server.serve(), self.loop)
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start within 10 s")
            time.sleep(0.02)
        self.servers.append(server)
        return port

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        time.sleep(0.3)
        for runner in self.runners:
            self.run(runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
