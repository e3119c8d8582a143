"""In-process OpenAI-style streaming server on 127.0.0.1 for the bench tests.

It also keeps vLLM-style /metrics (TTFT/E2E/queue histograms, generation token counter)
that it computes itself, so server-agreement logic can be checked against known answers.
"""
import asyncio
import json
import socket
import time

from aiohttp import web

BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

TTFT = 0.03
ITL = 0.01


class FixtureServer:
    """Streams max_tokens content chunks after TTFT, ITL apart, then usage and [DONE].

    The first path segment picks the behaviour: ok, fail500, cut, nodone, slow, flaky.
    """

    def __init__(self, ttft=TTFT, itl=ITL):
        self.ttft, self.itl = ttft, itl
        self.hist = {"ttft": [], "e2e": []}
        self.generated = 0
        self.arrivals = []
        self.bodies = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits = 0

    async def handle(self, request):
        mode = request.match_info.get("mode", "ok")
        arrived = time.perf_counter()
        self.arrivals.append(arrived)
        body = await request.json()
        self.bodies.append(body)
        self.hits += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if mode == "fail500" or (mode == "flaky" and self.hits % 3 == 0):
                return web.json_response({"error": {"message": "engine dead"}}, status=500)
            if mode == "slow":
                await asyncio.sleep(3.0)
            return await self.stream(request, body, mode, arrived)
        finally:
            self.in_flight -= 1

    async def metrics(self, request):
        lines = []
        for key, name in (("ttft", "vllm:time_to_first_token_seconds"),
                          ("e2e", "vllm:e2e_request_latency_seconds")):
            values = self.hist[key]
            for b in BUCKETS:
                lines.append(f'{name}_bucket{{le="{b}",model_name="fixture"}} '
                             f"{sum(1 for v in values if v <= b)}")
            lines.append(f'{name}_bucket{{le="+Inf",model_name="fixture"}} {len(values)}')
            lines.append(f'{name}_count{{model_name="fixture"}} {len(values)}')
            lines.append(f'{name}_sum{{model_name="fixture"}} {sum(values)}')
        lines.append(f'vllm:generation_tokens_total{{model_name="fixture"}} {self.generated}')
        lines.append(f'vllm:num_requests_running{{model_name="fixture"}} {self.in_flight}')
        return web.Response(text="\n".join(lines) + "\n")

    async def stream(self, request, body, mode, arrived=None):
        arrived = arrived or time.perf_counter()
        first = None
        usage_each = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))
        chat = "messages" in body
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(obj):
            await resp.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

        if chat:  # vLLM opens chat streams with a role-only chunk: not a token
            await send({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        await resp.write(b": keep-alive comment\n\n")
        await asyncio.sleep(self.ttft)
        n = body["max_tokens"]
        for i in range(n):
            if i:
                await asyncio.sleep(self.itl)
            if mode == "cut" and i == 2:
                request.transport.close()  # abrupt: chunked body never terminated
                return resp
            piece = f"t{i} "
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}} if chat
                                 else {"index": 0, "text": piece}]}
            if usage_each:
                chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": i + 1}
            await send(chunk)
            first = first or time.perf_counter()
        if mode == "nodone":
            await resp.write_eof()  # clean HTTP end, but no usage and no [DONE]
            return resp
        words = len((body["messages"][0]["content"] if chat else body["prompt"]).split())
        await send({"choices": [], "usage": {"prompt_tokens": words, "completion_tokens": n,
                                             "total_tokens": words + n}})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        self.hist["ttft"].append(first - arrived)
        self.hist["e2e"].append(time.perf_counter() - arrived)
        self.generated += n
        return resp


def free_port():  # noqa: D103 - kept for refused-connection tests: use range_port
    return range_port()


def _ephemeral_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



PORT_RANGE = (20500, 20999)  # this area's assigned ports (helper rules)


def range_port():
    """A free port inside PORT_RANGE (ports are probed, never assumed)."""
    import random
    candidates = list(range(*PORT_RANGE))
    random.shuffle(candidates)
    for port in candidates[:200]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def serve_in_thread(server):
    """Run the fixture app on its own loop in a daemon thread; returns (port, stop)."""
    import threading
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    def main():
        asyncio.set_event_loop(loop)
        holder["runner"], holder["port"] = loop.run_until_complete(start_app(server))
        ready.set()
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)

    def stop():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return holder["port"], stop


async def start_app(server, port=None):
    app = web.Application()
    app.router.add_post("/{mode}/v1/chat/completions", server.handle)
    app.router.add_post("/{mode}/v1/completions", server.handle)
    app.router.add_get("/{mode}/metrics", server.metrics)
    app.router.add_post("/v1/chat/completions", server.handle)  # mode "ok" at the root
    app.router.add_post("/v1/completions", server.handle)
    app.router.add_get("/metrics", server.metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = port or range_port()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=2048)  # default 128 would cap us
    await site.start()
    return runner, port
