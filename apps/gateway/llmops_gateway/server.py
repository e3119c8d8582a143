"""The gateway app: OpenAI routes proxied to the upstream (the router) chunk by chunk, with API
keys, timeouts, a per-client in-flight limit, /health, /metrics and the chat page at /."""
from __future__ import annotations

import json
import time
from collections import defaultdict

import aiohttp
from aiohttp import web

from llmops_common.errors import error_response, sse_error
from llmops_common.proxy import TIMEOUT_ERRORS, UPSTREAM_ERRORS, new_session, probe, relay, send, stream_timeout
from llmops_common.service import application

from .auth import ApiKeys
from .config import GatewayConfig
from .page import chat_page
from .telemetry import GatewayMetrics

# Request headers worth passing on; Authorization is not (gateway keys stay at the gateway).
FORWARD_REQUEST = ("content-type", "accept", "x-request-id", "x-session-id")
FORWARD_RESPONSE = ("content-type", "retry-after", "x-llmops-replica", "x-request-id")
CLIENT_GONE = 499  # nginx's status for "the client closed the connection"


class Gateway:
    def __init__(self, config: GatewayConfig, keys: ApiKeys) -> None:
        self.config, self.keys = config, keys
        self.metrics = GatewayMetrics()
        self.timeout = stream_timeout(config.connect_timeout_s, config.read_timeout_s)
        self.session: aiohttp.ClientSession | None = None
        self.client_inflight: dict[str, int] = defaultdict(int)

    async def start(self, _app: web.Application) -> None:
        self.session = new_session()

    async def stop(self, _app: web.Application) -> None:
        await self.session.close()

    def _finish(self, route: str, status: int, started: float, client: str) -> None:
        self.metrics.finished(route, status, time.perf_counter() - started)
        self.metrics.inflight.dec()
        self.client_inflight[client] -= 1
        if self.client_inflight[client] <= 0:
            del self.client_inflight[client]

    def _refuse(self, route: str, started: float, response: web.Response) -> web.Response:
        self.metrics.finished(route, response.status, time.perf_counter() - started)
        return response

    async def _check(self, request: web.Request, route: str) -> tuple[str, bytes | None, web.Response | None]:
        """(client id, body, refusal): the key, the body and the per-client limit."""
        client = request.remote or "unknown"
        if self.keys.enabled:
            key_id = self.keys.check(request.headers.get("authorization"))
            if key_id is None:
                self.metrics.auth_failures.labels(route).inc()
                return client, None, error_response(
                    401, "Missing or wrong API key: send `Authorization: Bearer <key>`.", "invalid_request_error",
                    "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
            client = key_id
        body = None
        if request.method == "POST":
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return client, None, error_response(413, f"Request body over {self.config.max_body_bytes} bytes.",
                                                    "invalid_request_error", "request_too_large")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return client, None, error_response(400, "The request body must be a JSON object.",
                                                    "invalid_request_error", "invalid_json")
        limit = self.config.max_inflight_per_client
        if limit and self.client_inflight[client] >= limit:
            self.metrics.limited.labels(route).inc()
            return client, None, error_response(
                429, f"Too many requests in flight for this client (limit {limit}).", "rate_limit_error",
                "rate_limit_exceeded", headers={"Retry-After": "1"})
        return client, body, None

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.path
        client, body, refusal = await self._check(request, route)
        if refusal is not None:
            return self._refuse(route, started, refusal)
        self.metrics.inflight.inc()
        self.client_inflight[client] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_REQUEST}
        if request.remote:
            headers["X-Forwarded-For"] = request.remote
        try:
            upstream, first = await send(self.session, request.method, self.config.upstream_url + request.path_qs,
                                         body, headers, self.timeout)
        except TIMEOUT_ERRORS:
            return self._upstream_failed(route, started, client, 504, "timeout",
                                         f"The upstream did not answer within {self.config.read_timeout_s:g} s.",
                                         "upstream_timeout")
        except UPSTREAM_ERRORS as exc:
            return self._upstream_failed(route, started, client, 502, "connect",
                                         f"The upstream {self.config.upstream_url} is unreachable "
                                         f"({type(exc).__name__}).", "upstream_unavailable")
        except BaseException:
            self._finish(route, CLIENT_GONE, started, client)
            raise
        self.metrics.first_byte.labels(route).observe(time.perf_counter() - started)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in FORWARD_RESPONSE}
        streaming = "text/event-stream" in upstream.headers.get("content-type", "")
        if streaming:
            out_headers["Cache-Control"] = "no-cache"
            out_headers["X-Accel-Buffering"] = "no"  # an nginx ingress in front must not buffer either
        status = upstream.status
        try:
            relayed = await relay(request, upstream, first, out_headers)
            if relayed.upstream_error is not None:
                await self._broken(request, relayed.response, route, relayed.upstream_error, streaming)
            elif relayed.client_gone:
                status = CLIENT_GONE
        finally:
            # The status line already went out; a broken stream shows in upstream_errors_total.
            self._finish(route, status, started, client)
        return relayed.response

    async def _broken(self, request: web.Request, response: web.StreamResponse, route: str, exc: BaseException,
                      streaming: bool) -> None:
        """The upstream stalled or broke after the answer started: a stream gets a final error
        event, any other body is cut off so the client cannot take it for a whole one."""
        stalled = isinstance(exc, TIMEOUT_ERRORS)
        self.metrics.errors.labels(route, "midstream_timeout" if stalled else "midstream").inc()
        if not streaming:
            if request.transport is not None:
                request.transport.close()
            return
        event = (sse_error(f"The upstream stalled for over {self.config.read_timeout_s:g} s.", "upstream_timeout")
                 if stalled else sse_error("The upstream connection broke mid-answer.", "upstream_disconnected"))
        try:
            await response.write(event)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left too

    def _upstream_failed(self, route: str, started: float, client: str, status: int, kind: str, message: str,
                         code: str) -> web.Response:
        self.metrics.errors.labels(route, kind).inc()
        self._finish(route, status, started, client)
        return error_response(status, message, "upstream_error", code,
                              headers={"Retry-After": "1"} if status != 504 else None)

    async def health(self, _request: web.Request) -> web.Response:
        reason = await probe(self.session, self.config.upstream_url + "/health", self.config.health_timeout_s)
        if reason is None:
            return web.json_response({"status": "ok", "upstream": self.config.upstream_url})
        return web.json_response({"status": "unavailable", "upstream": self.config.upstream_url, "reason": reason},
                                 status=503)

    async def live(self, _request: web.Request) -> web.Response:
        # Liveness must not follow the upstream: a router outage should not restart gateways.
        return web.json_response({"status": "ok"})

    async def index(self, _request: web.Request) -> web.Response:
        return chat_page(self.config.chat_page)


def create_app(config: GatewayConfig, keys: ApiKeys | None = None) -> web.Application:
    gateway = Gateway(config, keys or ApiKeys(config.api_keys_file, config.api_keys_env))
    # client_max_size one byte over the limit: a body of exactly max_body_bytes is accepted.
    return application(gateway, "gateway", [
        ("POST", "/v1/chat/completions", gateway.proxy),
        ("POST", "/v1/completions", gateway.proxy),
        ("GET", "/v1/models", gateway.proxy),
        ("GET", "/health", gateway.health),
        ("GET", "/health/live", gateway.live),
        ("GET", "/", gateway.index),
    ], client_max_size=config.max_body_bytes + 1)
