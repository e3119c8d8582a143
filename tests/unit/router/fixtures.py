"""Fixture vLLM-like backends on loopback with controllable metrics, latency and failures.

Ports come from this helper's assigned range (19500-19999); each one is checked free first.
"""
from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager

from aiohttp import web

PORT_RANGE = range(19500, 20000)
_next = [19500]


def free_port() -> int:
    for _ in range(len(PORT_RANGE)):
        port = _next[0]
        _next[0] = port + 1 if port + 1 in PORT_RANGE else PORT_RANGE.start
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 19500-19999")


class Backend:
    """An OpenAI-style streaming server. Change the attributes to change its behaviour."""

    def __init__(self, name: str):
        self.name = name
        self.healthy = True
        self.waiting = 0.0
        self.running = 0.0
        self.kv = 0.0
        self.deprecated_names = False
        self.chunks = 3
        self.chunk_delay = 0.0
        self.first_delay = 0.0
        self.mode = "ok"  # ok | reset (drop before answering) | status503 | midstream
        self.hits = 0
        self.inflight = 0
        self.max_inflight = 0
        self.port = 0
        # Simulated engine capacity (like max_num_seqs): with slots set, requests beyond it
        # queue, and /metrics reports the live running/waiting counts, as vLLM does.
        self.slots: int | None = None
        self._sem: asyncio.Semaphore | None = None
        self.live_running = 0

    async def health(self, _r: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def metrics(self, _r: web.Request) -> web.Response:
        if self.slots is not None:
            self.running = float(self.live_running)
            self.waiting = float(self.inflight - self.live_running)
        kv = "vllm:gpu_cache_usage_perc" if self.deprecated_names else "vllm:kv_cache_usage_perc"
        labels = '{engine="0",model_name="m x"}'
        text = (f"# HELP vllm:num_requests_waiting x\n# TYPE vllm:num_requests_waiting gauge\n"
                f"vllm:num_requests_waiting{labels} {self.waiting}\n"
                f"vllm:num_requests_running{labels} {self.running}\n"
                f"{kv}{labels} {self.kv}\n")
        return web.Response(text=text)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.hits += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.mode == "reset":
                request.transport.close()
                return web.Response(status=500)
            if self.mode == "status503":
                return web.json_response({"error": {"message": "overloaded"}}, status=503)
            if not body.get("stream"):
                await asyncio.sleep(self.first_delay)
                return web.json_response({"id": "x", "object": "chat.completion", "served_by": self.name,
                                          "choices": [{"message": {"content": "hi"}}]})
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            if self.slots is not None:
                if self._sem is None:
                    self._sem = asyncio.Semaphore(self.slots)
                async with self._sem:
                    self.live_running += 1
                    try:
                        return await self._stream(request, resp)
                    finally:
                        self.live_running -= 1
            return await self._stream(request, resp)
        finally:
            self.inflight -= 1

    async def _stream(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        try:
            return await self._chunks(request, resp)
        except ConnectionResetError:  # the router hung up (client gone): stop, like vLLM aborts
            self.aborted = getattr(self, "aborted", 0) + 1
            return resp

    async def _chunks(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        await asyncio.sleep(self.first_delay)
        for i in range(self.chunks):
            if i:
                await asyncio.sleep(self.chunk_delay)
            if self.mode == "midstream" and i == 1:
                request.transport.close()
                return resp
            chunk = {"served_by": self.name, "choices": [{"delta": {"content": f"t{i}"}}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"prompt_tokens": 10, "completion_tokens": self.chunks, "total_tokens": 10 + self.chunks}
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/completions", self.completions)
        return app


@asynccontextmanager
async def serve(app: web.Application, port: int):
    runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=2048)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def backends(*names: str):
    """Start one Backend per name; yields {name: Backend} with .port/.url set."""
    started = {}
    stack = []
    try:
        for name in names:
            backend = Backend(name)
            backend.port = free_port()
            cm = serve(backend.app(), backend.port)
            backend.url = await cm.__aenter__()
            stack.append(cm)
            started[name] = backend
        yield started
    finally:
        for cm in reversed(stack):
            await cm.__aexit__(None, None, None)


def router_config(models: dict[str, list], **settings) -> dict:
    """models: {model: [Backend | url]} -> the raw config dict the router reads."""
    out = {"models": [], **settings}
    for model, reps in models.items():
        out["models"].append({"name": model, "replicas": [
            {"name": getattr(r, "name", str(r)), "url": getattr(r, "url", r)} for r in reps]})
    return out


@asynccontextmanager
async def router(raw: dict):
    from llmops_router.config import parse_config
    from llmops_router.server import ROUTER_KEY, create_app

    app = create_app(parse_config(raw))
    port = free_port()
    async with serve(app, port) as url:
        yield url, app[ROUTER_KEY]
