"""The gateway app: OpenAI routes proxied to the upstream (the router) chunk by chunk, with API
keys, timeouts, a per-client in-flight limit, /health, /metrics and the chat page at /."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from typing import AsyncIterator

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .auth import ApiKeys
from .config import GatewayConfig
from .errors import error_response, sse_error
from .page import chat_page
from .telemetry import GatewayMetrics

# Request headers worth passing on; Authorization is not (gateway keys stay at the gateway).
FORWARD_REQUEST = ("content-type", "accept", "x-request-id", "x-session-id")
FORWARD_RESPONSE = ("content-type", "retry-after", "x-llmops-replica", "x-request-id")
TIMEOUT_ERRORS = (asyncio.TimeoutError, aiohttp.ServerTimeoutError)
CONNECT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError)


class Gateway:
    def __init__(self, config: GatewayConfig, keys: ApiKeys) -> None:
        self.config, self.keys = config, keys
        self.metrics = GatewayMetrics()
        self.session: aiohttp.ClientSession | None = None
        self.client_inflight: dict[str, int] = defaultdict(int)

    def timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_s,
                                     sock_read=self.config.read_timeout_s)

    def _finish(self, route: str, status: int, started: float, client: str) -> None:
        self.metrics.requests.inc(route, str(status))
        self.metrics.duration.observe(time.perf_counter() - started, route)
        self.metrics.inflight -= 1
        self.client_inflight[client] -= 1
        if self.client_inflight[client] <= 0:
            del self.client_inflight[client]

    def _refuse(self, route: str, started: float, response: Response) -> Response:
        self.metrics.requests.inc(route, str(response.status_code))
        self.metrics.duration.observe(time.perf_counter() - started, route)
        return response

    async def proxy(self, request: Request, route: str) -> Response:
        started = time.perf_counter()
        client = request.client.host if request.client else "unknown"
        if self.keys.enabled:
            key_id = self.keys.check(request.headers.get("authorization"))
            if key_id is None:
                self.metrics.auth_failures.inc(route)
                return self._refuse(route, started, error_response(
                    401, "Missing or wrong API key: send `Authorization: Bearer <key>`.",
                    "invalid_request_error", "invalid_api_key", {"WWW-Authenticate": "Bearer"}))
            client = key_id
        body = b""
        if request.method == "POST":
            body = await request.body()
            if len(body) > self.config.max_body_bytes:
                return self._refuse(route, started, error_response(
                    413, f"Request body over {self.config.max_body_bytes} bytes.", "invalid_request_error",
                    "request_too_large"))
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return self._refuse(route, started, error_response(
                    400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json"))
        limit = self.config.max_inflight_per_client
        if limit and self.client_inflight[client] >= limit:
            self.metrics.limited.inc(route)
            return self._refuse(route, started, error_response(
                429, f"Too many requests in flight for this client (limit {limit}).", "rate_limit_error",
                "rate_limit_exceeded", {"Retry-After": "1"}))
        self.metrics.inflight += 1
        self.client_inflight[client] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_REQUEST}
        if request.client:
            headers["X-Forwarded-For"] = request.client.host
        url = self.config.upstream_url + route
        upstream = None
        try:
            upstream = await self.session.request(request.method, url, data=body or None, headers=headers,
                                                  timeout=self.timeout())
            first = await upstream.content.readany()
        except TIMEOUT_ERRORS:
            return self._upstream_failed(route, started, client, upstream, 504, "timeout",
                                         f"The upstream did not answer within {self.config.read_timeout_s:g} s.",
                                         "upstream_timeout")
        except CONNECT_ERRORS as exc:
            return self._upstream_failed(route, started, client, upstream, 502, "connect",
                                         f"The upstream {self.config.upstream_url} is unreachable "
                                         f"({type(exc).__name__}).", "upstream_unavailable")
        except BaseException:
            if upstream is not None:
                upstream.close()
            self._finish(route, 499, started, client)
            raise
        self.metrics.first_byte.observe(time.perf_counter() - started, route)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in FORWARD_RESPONSE}
        if "text/event-stream" in upstream.headers.get("content-type", ""):
            out_headers["Cache-Control"] = "no-cache"
            out_headers["X-Accel-Buffering"] = "no"  # an nginx ingress in front must not buffer either
        return StreamingResponse(self._relay(upstream, first, route, started, client), status_code=upstream.status,
                                 headers=out_headers)

    def _upstream_failed(self, route: str, started: float, client: str, upstream, status: int, kind: str,
                         message: str, code: str) -> Response:
        if upstream is not None:
            upstream.close()
        self.metrics.errors.inc(route, kind)
        self._finish(route, status, started, client)
        return error_response(status, message, "upstream_error", code,
                              {"Retry-After": "1"} if status != 504 else None)

    async def _relay(self, upstream: aiohttp.ClientResponse, first: bytes, route: str, started: float,
                     client: str) -> AsyncIterator[bytes]:
        """Every upstream chunk is yielded as it arrives (no buffering)."""
        status, clean = upstream.status, False
        streaming = "text/event-stream" in upstream.headers.get("content-type", "")
        try:
            if first:
                yield first
            async for chunk in upstream.content.iter_any():
                yield chunk
            clean = True
        except TIMEOUT_ERRORS:
            self.metrics.errors.inc(route, "midstream_timeout")
            if streaming:
                yield sse_error(f"The upstream stalled for over {self.config.read_timeout_s:g} s.", "upstream_timeout")
        except CONNECT_ERRORS:
            self.metrics.errors.inc(route, "midstream")
            if streaming:
                yield sse_error("The upstream connection broke mid-answer.", "upstream_disconnected")
        finally:
            # close (not release) unless the body ended: an abandoned stream must reach the
            # upstream as a disconnect, so vLLM stops generating for nobody.
            if clean:
                upstream.release()
            else:
                upstream.close()
            # The status line already went out; a broken stream shows in upstream_errors_total.
            self._finish(route, status, started, client)

    async def health(self) -> Response:
        try:
            async with self.session.get(self.config.upstream_url + "/health",
                                        timeout=aiohttp.ClientTimeout(total=self.config.health_timeout_s)) as resp:
                if resp.status == 200:
                    return JSONResponse({"status": "ok", "upstream": self.config.upstream_url})
                reason = f"upstream /health answered {resp.status}"
        except TIMEOUT_ERRORS:
            reason = f"upstream /health timed out after {self.config.health_timeout_s:g} s"
        except CONNECT_ERRORS as exc:
            reason = f"upstream unreachable ({type(exc).__name__})"
        return JSONResponse({"status": "unavailable", "upstream": self.config.upstream_url, "reason": reason},
                            status_code=503)


def create_app(config: GatewayConfig, keys: ApiKeys | None = None) -> FastAPI:
    gateway = Gateway(config, keys or ApiKeys(config.api_keys_file, config.api_keys_env))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # limit=0: the default pool of 100 connections would cap concurrent streams at 100.
        gateway.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        try:
            yield
        finally:
            await gateway.session.close()

    app = FastAPI(title="llmops gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await gateway.proxy(request, "/v1/chat/completions")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await gateway.proxy(request, "/v1/completions")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return await gateway.proxy(request, "/v1/models")

    @app.get("/health")
    async def health() -> Response:
        return await gateway.health()

    @app.get("/health/live")
    async def live() -> Response:
        # Liveness must not follow the upstream: a router outage should not restart gateways.
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(gateway.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def index() -> Response:
        return chat_page(config.chat_page)

    return app
