#!/usr/bin/env python3
"""The one fake OpenAI-compatible server of the tests and bench scripts (loopback only).

It stands in for vLLM (and for the router in front of it) wherever a test or a bench script
needs a server whose timing and failures are known:

- timing: the first content token `ttft` seconds after the request joins the batch, then one
  token every `itl` seconds (deadlines, so write time does not stretch them); `tokens` fixes
  the count, else the body's `max_tokens`; `answer` streams that text one word per token;
- batching: `slots` requests run at once (vLLM's max_num_seqs), the rest wait, and /metrics
  shows the live running/waiting counts; `admit_s` keeps each request that long in `waiting`
  before it may join the batch (vLLM admits at its next scheduler step), `batch_itl` adds that
  many seconds to every token per other running sequence (a CPU decode step grows with the
  batch);
- errors: `mode` ok | failNNN (HTTP NNN with an OpenAI error body) | flaky (every third request
  fails with 500) | reset (connection dropped before an answer) | cut (dropped after `cut_after`
  tokens) | nodone (clean end without usage and [DONE]) | slow (waits `slow_s` first, as does
  any model in `slow_models`). A path prefix picks the mode per request: /fail500/v1/...;
- /metrics in vLLM's names (prometheus_client): queue gauges (the current KV-cache name or,
  with `deprecated_names`, the old one), TTFT and E2E histograms from its own clock, the
  generation token counter and prefix-cache counters (queries: prompt words; hits: all of them
  when the prompt's first `prefix_words` words were seen before); /health (`healthy`, `health_body`); /v1/models.

The bench scripts use it only to measure client or proxy overhead against a known server;
its numbers are never results about a model.

    python tests/fakes/fake_openai.py --port 20600 --ttft-ms 20 --itl-ms 2
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Callable, Iterator, Optional, Sequence

from aiohttp import web, web_protocol, web_server
from procs import terminate
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

SENTENCE = "Hello from the fixture model, streamed one word at a time."
BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
# What /fixture/config may change at run time (a running bench re-shapes the load).
SETTABLE = ("ttft", "itl", "tokens", "mode", "slow_s", "healthy", "cut_after")
# perf_counter seconds: when the request's bytes arrived (kernel stamp with --kernel-arrival)
# and when the fixture's loop handed them to its protocol
ARRIVED = web.RequestKey("arrived", float)
ARRIVED_LOOP = web.RequestKey("arrived_loop", float)


def free_port() -> int:
    """A port the kernel just handed out and nothing listens on (ephemeral range)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _EngineGauges:
    """A prometheus_client collector that reads the fake's queue state at scrape time."""

    def __init__(self, fake: "FakeOpenAI") -> None:
        self.fake = fake

    def collect(self):
        fake = self.fake
        kv = "vllm:gpu_cache_usage_perc" if fake.deprecated_names else "vllm:kv_cache_usage_perc"
        for name, value in (("vllm:num_requests_running", fake.running_now()),
                            ("vllm:num_requests_waiting", fake.waiting_now()), (kv, fake.kv)):
            family = GaugeMetricFamily(name, name.split(":")[1].replace("_", " "),
                                       labels=["engine", "model_name"])
            family.add_metric(["0", fake.models[0]], float(value))
            yield family


class FakeOpenAI:
    """Change the attributes to change the behaviour, also while it serves."""

    def __init__(self, name: str = "fixture", ttft: float = 0.02, itl: float = 0.002,
                 tokens: Optional[int] = None, answer: Optional[str] = None,
                 models: Sequence[str] = ("fixture",), slots: Optional[int] = None,
                 slow_s: float = 3.0, slow_models: Sequence[str] = ("slow",),
                 replica_header: bool = False, admit_s: float = 0.0, batch_itl: float = 0.0) -> None:
        self.name, self.ttft, self.itl, self.tokens, self.answer = name, ttft, itl, tokens, answer
        self.models, self.slots, self.slow_s, self.slow_models = list(models), slots, slow_s, set(slow_models)
        self.replica_header = replica_header  # send X-Llmops-Replica: name, as the router does
        self.admit_s, self.batch_itl = admit_s, batch_itl
        self.port, self.url = 0, ""  # set by start()
        self.mode = "ok"
        self.cut_after = 2
        self.healthy = True
        self.health_body: dict = {"status": "ok"}
        # Queue gauges: None reports the live counts, a number reports that number.
        self.running: Optional[float] = None
        self.waiting: Optional[float] = None
        self.kv = 0.0
        self.deprecated_names = False
        # What it saw.
        self.hits = 0
        self.bodies: list[dict] = []
        self.arrivals: list[float] = []
        self.last_headers: dict[str, str] = {}
        self.inflight = self.max_inflight = self.live_running = 0
        self.aborted = 0
        self.generated = 0
        self.ttfts: list[float] = []  # arrival -> first content token written, seconds
        # the same, from when the loop handed the bytes to the protocol (== ttfts unless the
        # fixture serves with kernel arrival stamps, --kernel-arrival)
        self.ttfts_loop: list[float] = []
        self._slots: Optional[asyncio.Semaphore] = None
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name"]
        self._ttft_hist = Histogram("vllm:time_to_first_token_seconds", "TTFT", labels, buckets=BUCKETS,
                                    registry=self.registry)
        self._e2e_hist = Histogram("vllm:e2e_request_latency_seconds", "E2E", labels, buckets=BUCKETS,
                                   registry=self.registry)
        self._tokens = Counter("vllm:generation_tokens", "generated tokens", labels, registry=self.registry)
        self.registry.register(_EngineGauges(self))
        self.prefix_words = 16
        self._prefixes: set = set()
        self._cache_queries = Counter("vllm:prefix_cache_queries", "prompt tokens looked up", labels,
                                      registry=self.registry)
        self._cache_hits = Counter("vllm:prefix_cache_hits", "prompt tokens found cached", labels,
                                   registry=self.registry)
        for model in self.models:  # vLLM exposes them from the start, at 0
            self._cache_queries.labels(model)
            self._cache_hits.labels(model)

    # -- queue state ---------------------------------------------------------------------
    def running_now(self) -> float:
        return self.running if self.running is not None else self.live_running

    def waiting_now(self) -> float:
        return self.waiting if self.waiting is not None else self.inflight - self.live_running

    @contextlib.asynccontextmanager
    async def _batch_slot(self):
        if self.admit_s > 0:
            await asyncio.sleep(self.admit_s)
        if self.slots is not None:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.slots)
            await self._slots.acquire()
        self.live_running += 1
        try:
            yield
        finally:
            self.live_running -= 1
            if self.slots is not None:
                self._slots.release()

    # -- answers -------------------------------------------------------------------------
    def _pieces(self, body: dict) -> list[str]:
        if self.answer is not None:
            words = self.answer.split(" ")
            return [w + " " for w in words[:-1]] + words[-1:]
        count = self.tokens or int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        return [f"t{i} " for i in range(count)]

    @staticmethod
    def _prompt_tokens(body: dict) -> int:
        if "messages" in body:
            text = " ".join(str(m.get("content", "")) for m in body["messages"])
        else:
            text = str(body.get("prompt", ""))
        return max(1, len(text.split()))

    def _choice(self, chat: bool, piece: str, finish: Optional[str], whole: bool = False) -> dict:
        if chat and whole:
            return {"index": 0, "message": {"role": "assistant", "content": piece}, "finish_reason": finish}
        if chat:
            return {"index": 0, "delta": {"content": piece}, "finish_reason": finish}
        return {"index": 0, "text": piece, "finish_reason": finish}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = request.get(ARRIVED) or time.perf_counter()
        mode = request.match_info.get("mode") or self.mode
        body = await request.json()
        self.hits += 1
        self.bodies.append(body)
        self.arrivals.append(arrived)
        self.last_headers = dict(request.headers)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        self._prefix_cache(body)
        try:
            if mode == "reset":
                request.transport.close()
                return web.Response(status=500)
            if mode.startswith("fail") or (mode == "flaky" and self.hits % 3 == 0):
                status = int(mode[4:]) if mode[4:].isdigit() else 500
                return web.json_response({"error": {"message": f"fake error {status}", "type": "server_error",
                                                    "param": None, "code": None}}, status=status)
            if mode == "slow" or body.get("model") in self.slow_models:
                await asyncio.sleep(self.slow_s)
            if not body.get("stream"):
                return await self._whole(body)
            return await self._stream(request, body, mode, arrived)
        finally:
            self.inflight -= 1

    def _prefix_cache(self, body: dict) -> None:
        if not isinstance(body, dict):
            return
        model, tokens = str(body.get("model")), self._prompt_tokens(body)
        if "messages" in body:
            text = " ".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
        else:
            text = str(body.get("prompt", ""))
        head = " ".join(text.split()[: self.prefix_words])
        self._cache_queries.labels(model).inc(tokens)
        if head in self._prefixes:
            self._cache_hits.labels(model).inc(tokens)
        self._prefixes.add(head)

    def _usage(self, body: dict, completion: int) -> dict:
        prompt = self._prompt_tokens(body)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _whole(self, body: dict) -> web.Response:
        chat, pieces = "messages" in body, self._pieces(body)
        async with self._batch_slot():
            await asyncio.sleep(self.ttft + self.itl * max(len(pieces) - 1, 0))
        self.generated += len(pieces)
        finish = "stop" if self.answer is not None else "length"
        return web.json_response({
            "id": "fake", "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": body.get("model"), "served_by": self.name,
            "choices": [self._choice(chat, "".join(pieces), finish, whole=True)],
            "usage": self._usage(body, len(pieces))}, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        return {"X-Llmops-Replica": self.name} if self.replica_header else {}

    async def _stream(self, request: web.Request, body: dict, mode: str, arrived: float) -> web.StreamResponse:
        chat, pieces = "messages" in body, self._pieces(body)
        usage_each = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))
        base = {"id": "fake", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": body.get("model"), "served_by": self.name}
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **self._headers()})
        await resp.prepare(request)

        async def send(obj: dict) -> None:
            await resp.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

        first_at = None
        try:
            async with self._batch_slot():
                started = time.perf_counter()
                if chat:  # vLLM opens chat streams with a role-only chunk: not a token
                    await send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
                await resp.write(b": keep-alive comment\n\n")
                due = started + self.ttft
                for i, piece in enumerate(pieces):
                    if i:
                        due += self.itl + self.batch_itl * max(self.live_running - 1, 0)
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if mode == "cut" and i == self.cut_after:
                        request.transport.close()  # abrupt: the chunked body never ends
                        return resp
                    last = i == len(pieces) - 1
                    chunk = {**base, "choices": [self._choice(chat, piece, (
                        "stop" if self.answer is not None else "length") if last else None)]}
                    if usage_each:
                        chunk["usage"] = self._usage(body, i + 1)
                    await send(chunk)
                    if i == 0:
                        written = time.perf_counter()
                        first_at = written - arrived
                        self.ttfts.append(first_at)
                        self.ttfts_loop.append(written - request.get(ARRIVED_LOOP, arrived))
                if mode == "nodone":
                    await resp.write_eof()
                    return resp
                await send({**base, "choices": [], "usage": self._usage(body, len(pieces))})
                await resp.write(b"data: [DONE]\n\n")
                await resp.write_eof()
        except ConnectionResetError:  # the client hung up: stop, as vLLM aborts the request
            self.aborted += 1
            return resp
        model = str(body.get("model"))
        if first_at is not None:
            self._ttft_hist.labels(model).observe(first_at)
        self._e2e_hist.labels(model).observe(time.perf_counter() - arrived)
        self._tokens.labels(model).inc(len(pieces))
        self.generated += len(pieces)
        return resp

    # -- the other routes ----------------------------------------------------------------
    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response(self.health_body, status=200 if self.healthy else 503)

    async def list_models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "owned_by": "fake"} for m in self.models]})

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def stats(self, request: web.Request) -> web.Response:
        data, loop_clock = sorted(self.ttfts), sorted(self.ttfts_loop)
        if request.query.get("reset"):
            self.ttfts.clear()
            self.ttfts_loop.clear()
        return web.json_response({"ttft_ms": [v * 1000.0 for v in data],
                                  "ttft_loop_ms": [v * 1000.0 for v in loop_clock],
                                  "hits": self.hits})

    async def configure(self, request: web.Request) -> web.Response:
        changes = await request.json()
        unknown = set(changes) - set(SETTABLE)
        if unknown:
            return web.json_response({"error": f"not settable: {sorted(unknown)}; use {SETTABLE}"}, status=400)
        for key, value in changes.items():
            setattr(self, key, value)
        return web.json_response({key: getattr(self, key) for key in SETTABLE})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_stamp_arrival])
        for prefix in ("", "/{mode}"):
            app.router.add_post(prefix + "/v1/chat/completions", self.handle)
            app.router.add_post(prefix + "/v1/completions", self.handle)
            app.router.add_get(prefix + "/v1/models", self.list_models)
            app.router.add_get(prefix + "/metrics", self.metrics)
            app.router.add_get(prefix + "/health", self.health)
        app.router.add_get("/fixture/stats", self.stats)
        app.router.add_post("/fixture/config", self.configure)
        return app


# -- serving helpers -----------------------------------------------------------------------
class _StampedHandler(web_protocol.RequestHandler):
    """aiohttp's server protocol, noting when a request's first bytes arrived: the fixture's
    own TTFT starts there, not when its handler got to run (a busy fixture's queueing is
    the server's time, not the client's). Served over a kernel-stamping transport
    (--kernel-arrival), "arrived" is the kernel's receive stamp and the loop's clock is kept
    beside it."""

    rx_first: Optional[float] = None
    rx_first_loop: Optional[float] = None

    def data_received(self, data: bytes) -> None:
        if data and self.rx_first is None:
            self.rx_first_loop = time.perf_counter()
            self.rx_first = getattr(self.transport, "rx_stamp", 0.0) or self.rx_first_loop
        super().data_received(data)


class _StampedServer(web_server.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _StampedHandler(self, loop=self._loop, **self._kwargs)


def arrival(request: web.Request) -> float:
    """When the request's bytes arrived (then cleared for the connection's next request)."""
    proto = request.protocol
    stamp = getattr(proto, "rx_first", None)
    if stamp is None:
        return time.perf_counter()
    request[ARRIVED_LOOP] = proto.rx_first_loop or stamp
    proto.rx_first = proto.rx_first_loop = None
    return stamp


@web.middleware
async def _stamp_arrival(request: web.Request, handler: Callable) -> web.StreamResponse:
    # Every request takes its connection's stamp, so a keep-alive connection's next request
    # never inherits an older one.
    request[ARRIVED] = arrival(request)
    return await handler(request)


class _KernelStampedSite:
    """Accepts on 127.0.0.1 and serves each connection over the benchmark client's
    kernel-stamping transport (rxstamp.StampTransport), so the fixture's arrival is when the
    request reached its socket, however busy its loop was."""

    def __init__(self, runner: web.AppRunner, port: int, backlog: int) -> None:
        from ansible_collections.llmops.platform.plugins.module_utils.bench import rxstamp
        self._transport = rxstamp.StampTransport
        self._handlers = runner.server
        self._loop = asyncio.get_running_loop()
        self.sock = socket.create_server(("127.0.0.1", port), backlog=backlog)
        # Set on the listener, accepted sockets inherit it: bytes a client sends before the
        # accept (a burst of new connections) are stamped too.
        self.sock.setsockopt(socket.SOL_SOCKET, rxstamp.SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self._loop.add_reader(self.sock.fileno(), self._accept)
        self._runner = runner
        runner._sites.append(self)  # so runner.cleanup() stops it

    @property
    def name(self) -> str:
        return "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EMFILE and the like: the next readiness retries
            self._transport(self._loop, conn, self._handlers())

    _server = None  # runner.addresses looks for an asyncio server; this site has none

    async def stop(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._runner._sites.remove(self)


async def start(server: FakeOpenAI | web.Application, port: int = 0,
                kernel_arrival: bool = False) -> tuple[web.AppRunner, int]:
    """Serve on 127.0.0.1 in the running loop; (runner, port). Port 0: the kernel picks."""
    app = server.app() if hasattr(server, "app") else server
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    if type(runner.server) is web_server.Server:  # noqa: E721 - exactly aiohttp's, nothing else
        runner.server.__class__ = _StampedServer
    if kernel_arrival:
        port = _KernelStampedSite(runner, port, backlog=8192).sock.getsockname()[1]
    else:
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)  # the default 128 caps bursts
        await site.start()
        port = runner.addresses[0][1]
    if isinstance(server, FakeOpenAI):
        server.port, server.url = port, f"http://127.0.0.1:{port}"
    return runner, port


@contextlib.asynccontextmanager
async def serving(server: FakeOpenAI | web.Application, port: int = 0, kernel_arrival: bool = False):
    """`async with serving(fake) as url:` -> http://127.0.0.1:PORT, stopped on exit."""
    runner, port = await start(server, port, kernel_arrival=kernel_arrival)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def serve_in_thread(server: FakeOpenAI | web.Application, port: int = 0) -> tuple[int, Callable[[], None]]:
    """Serve on a loop of its own in a daemon thread, for synchronous tests; (port, stop)."""
    loop = asyncio.new_event_loop()
    runner, port = loop.run_until_complete(start(server, port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()
    return port, stop


@contextlib.contextmanager
def running(args: Sequence[str] = (), port: Optional[int] = None, prefix: Sequence[str] = (),
            log: Optional[str] = None, python: str = sys.executable) -> Iterator[str]:
    """Run the fake as its own process (`args`: CLI options) until the block ends; yields its
    base URL once /health answers. `prefix` wraps the command (e.g. taskset)."""
    port = port or free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([*prefix, python, os.path.abspath(__file__), "--port", str(port), *args],
                            stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake OpenAI server on port {port} did not start (exit {proc.poll()})")
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        terminate(proc, 5)
        if log:
            out.close()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--itl-ms", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, help="tokens per answer (default: the body's max_tokens)")
    parser.add_argument("--answer", help="stream this text, one word per token")
    parser.add_argument("--model", action="append", help="served model id (repeatable; default fixture)")
    parser.add_argument("--name", default="fixture", help="replica name (served_by, X-Llmops-Replica)")
    parser.add_argument("--replica-header", action="store_true", help="send X-Llmops-Replica like the router")
    parser.add_argument("--slow-s", type=float, default=3.0, help="delay of model `slow` and mode slow")
    parser.add_argument("--kernel-arrival", action="store_true",
                        help="a request's arrival is the kernel's receive stamp (Linux), not the "
                             "moment the loop read it; /fixture/stats keeps both")
    args = parser.parse_args(argv)
    try:
        import uvloop  # optional: a faster loop keeps the fake out of the measurement
        uvloop.install()
    except ImportError:
        pass
    fake = FakeOpenAI(args.name, args.ttft_ms / 1000.0, args.itl_ms / 1000.0, args.tokens, args.answer,
                      args.model or ["fixture"], slow_s=args.slow_s, replica_header=args.replica_header)
    if args.kernel_arrival:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".collections"))
    asyncio.run(_serve_forever(fake, args.port, args.kernel_arrival))


async def _serve_forever(fake: FakeOpenAI, port: int, kernel_arrival: bool) -> None:
    """Serve until SIGTERM/SIGINT, through start(): the arrival-stamping protocol included."""
    import signal  # pylint: disable=import-outside-toplevel
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner, _port = await start(fake, port, kernel_arrival=kernel_arrival)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
