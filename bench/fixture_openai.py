#!/usr/bin/env python3
"""Loopback OpenAI-style streaming server with fixed TTFT and ITL, for client measurements.

  python bench/fixture_openai.py --port 20600 --ttft-ms 20 --itl-ms 2

Streams `max_tokens` one-token chunks (chat or completions), `usage` at the end (and on every
chunk when stream_options.continuous_usage_stats is set), then [DONE]. Also answers
/v1/models, /health and a small /metrics. Timers are deadlines from the request's arrival,
so the configured TTFT/ITL are not stretched by the write time of earlier chunks.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web


def build_app(ttft: float, itl: float, model: str) -> web.Application:
    stats = {"requests": 0, "tokens": 0}
    # The fixture's own view of each request's TTFT (arrival -> first content chunk written):
    # the client's bias is its TTFT minus this, so the fixture's own delays under load
    # (timer slack, CPU contention) are not blamed on the client.
    ttfts: list = []

    async def completions(request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        chat = "messages" in body
        n = int(body.get("max_tokens") or 16)
        usage_each = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))
        prompt = body["messages"][0]["content"] if chat else body.get("prompt", "")
        prompt_tokens = max(1, len(str(prompt).split()))
        stats["requests"] += 1
        if not body.get("stream"):
            await asyncio.sleep(ttft + itl * max(n - 1, 0))
            stats["tokens"] += n
            choice = ({"index": 0, "message": {"role": "assistant", "content": "x " * n},
                       "finish_reason": "length"} if chat else
                      {"index": 0, "text": "x " * n, "finish_reason": "length"})
            return web.json_response({"id": "f", "object": "chat.completion", "model": model,
                                      "choices": [choice],
                                      "usage": {"prompt_tokens": prompt_tokens,
                                                "completion_tokens": n,
                                                "total_tokens": prompt_tokens + n}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "f", "created": int(time.time()), "model": model,
                "object": "chat.completion.chunk" if chat else "text_completion"}
        if chat:
            await resp.write(b"data: " + json.dumps({**base, "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}}]}).encode() + b"\n\n")
        for i in range(n):
            delay = arrived + ttft + i * itl - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            choice = ({"index": 0, "delta": {"content": "x "}, "finish_reason": None} if chat
                      else {"index": 0, "text": "x ", "finish_reason": None})
            if i == n - 1:
                choice["finish_reason"] = "length"
            chunk = {**base, "choices": [choice]}
            if usage_each:
                chunk["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": i + 1,
                                  "total_tokens": prompt_tokens + i + 1}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if i == 0:
                ttfts.append(time.perf_counter() - arrived)
        await resp.write(b"data: " + json.dumps({**base, "choices": [], "usage": {
            "prompt_tokens": prompt_tokens, "completion_tokens": n,
            "total_tokens": prompt_tokens + n}}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        stats["tokens"] += n
        return resp

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": model, "object": "model",
                                                               "owned_by": "fixture"}]})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=f'fixture_requests_total {stats["requests"]}\n'
                                 f'vllm:generation_tokens_total{{model_name="{model}"}} '
                                 f'{stats["tokens"]}\n')

    async def fixture_stats(request: web.Request) -> web.Response:
        data = sorted(ttfts)
        if request.query.get("reset"):
            ttfts.clear()
        return web.json_response({"ttft_ms": [v * 1000.0 for v in data]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/fixture/stats", fixture_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--itl-ms", type=float, default=2.0)
    parser.add_argument("--model", default="fixture")
    args = parser.parse_args()
    try:
        import uvloop  # optional: a faster loop keeps the fixture out of the measurement
        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(args.ttft_ms / 1000.0, args.itl_ms / 1000.0, args.model),
                host="127.0.0.1", port=args.port, backlog=4096, access_log=None,
                print=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
