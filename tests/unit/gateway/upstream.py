"""A fixture OpenAI upstream for the gateway tests (unit and browser): streams a known answer
word by word with a delay between chunks, so "the client saw the first word before the last was
sent" proves the gateway does not buffer.

    python tests/unit/gateway/upstream.py --port 19710 [--delay-ms 150]

Model `slow` waits `slow_s` before answering (timeouts); the last request's headers are kept.
Ports: this helper's range 19700-19799.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time

from aiohttp import web

ANSWER = "Hello from the fixture model, streamed one word at a time."
PORTS = range(19700, 19800)


def free_port(skip: set[int] = frozenset()) -> int:
    for port in PORTS:
        if port in skip:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 19700-19799")


class Upstream:
    def __init__(self, delay_s: float = 0.05, slow_s: float = 3.0) -> None:
        self.delay_s, self.slow_s = delay_s, slow_s
        self.healthy = True
        self.last_headers: dict[str, str] = {}
        self.requests = 0

    async def health(self, _r: web.Request) -> web.Response:
        return web.json_response({"ok": self.healthy}, status=200 if self.healthy else 503)

    async def models(self, _r: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": "fixture-chat", "object": "model", "owned_by": "llmops"},
            {"id": "slow", "object": "model", "owned_by": "llmops"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.last_headers = dict(request.headers)
        body = await request.json()
        if body.get("model") == "slow":
            await asyncio.sleep(self.slow_s)
        words = ANSWER.split(" ")
        words = [w + " " for w in words[:-1]] + words[-1:]
        base = {"id": "chatcmpl-fixture", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model")}
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Llmops-Replica": "fixture-0"})
        await resp.prepare(request)
        for i, word in enumerate(words):
            if i:
                await asyncio.sleep(self.delay_s)
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": word},
                                          "finish_reason": "stop" if i == len(words) - 1 else None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        usage = {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}
        await resp.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": "cmpl-fixture", "object": "text_completion", "model": body.get("model"),
                                  "choices": [{"index": 0, "text": ANSWER, "finish_reason": "stop"}]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=150.0)
    args = parser.parse_args()
    web.run_app(Upstream(args.delay_ms / 1000.0).app(), host="127.0.0.1", port=args.port, print=None,
                access_log=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
