"""The aiohttp application: OpenAI-style routes, proxying, health checks and scraping."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import aiohttp
from aiohttp import web

from .config import RouterConfig
from .policies import Chooser
from .promparse import parse_queue_metrics
from .replicas import Replica
from .telemetry import RouterMetrics

log = logging.getLogger("llmops_router")

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes itself.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
# Failures before the first byte reached the client: safe to retry on another replica.
_UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)
# Replica overloaded or going away: try another one, the answer may differ there.
_RETRY_STATUSES = {502, 503, 504}
ROUTER_KEY: web.AppKey["Router"] = web.AppKey("router")


def error_response(status: int, message: str, err_type: str, code: str,
                   param: str | None = None, headers: dict | None = None) -> web.Response:
    """OpenAI's error shape, so SDKs raise their usual NotFoundError / APIStatusError."""
    body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class Router:
    def __init__(self, config: RouterConfig):
        self.config = config
        self.pools: dict[str, list[Replica]] = {
            m.name: [Replica(r.name, m.name, r.url, configured_capacity=r.max_num_seqs or m.max_num_seqs)
                     for r in m.replicas] for m in config.models}
        self.model_capacity = {m.name: m.max_num_seqs for m in config.models}
        self.static = {name: list(pool) for name, pool in self.pools.items()}
        self.discovery = {m.name: m.discovery for m in config.models if m.discovery}
        self.chooser = Chooser(config)
        self.metrics = RouterMetrics()
        self.session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self.started_at = time.time()

    @property
    def replicas(self) -> list[Replica]:
        return [r for pool in self.pools.values() for r in pool]

    def _scrapes(self) -> bool:
        return any(self.config.policy_for(m) in ("queue_aware", "session_affinity") for m in self.pools)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, _app: web.Application | None = None) -> None:
        # limit=0: one pooled connection per concurrent stream; keep-alive avoids a
        # TCP handshake per request (most of a proxy's added latency).
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        # auto_decompress off: bytes pass through exactly as the replica sent them.
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        await self.discover_once()
        await self.check_health_once()
        self._tasks.append(asyncio.create_task(self._loop(self.discover_and_check,
                                                          self.config.health_interval_s)))
        if self._scrapes():
            await self.scrape_once()
            self._tasks.append(asyncio.create_task(self._loop(self.scrape_once,
                                                              self.config.poll_interval_s)))

    async def stop(self, _app: web.Application | None = None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session:
            await self.session.close()

    @staticmethod
    async def _loop(func, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await func()
            except Exception:  # a bug in one round must not stop health checking for good
                log.exception("background round failed")

    async def _health(self, replica: Replica) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.health_timeout_s)
        try:
            async with self.session.get(replica.url + "/health", timeout=timeout) as resp:
                ok = resp.status == 200
        except _UPSTREAM_ERRORS:
            ok = False
        if ok != replica.healthy:
            log.info("replica %s is now %s", replica.name, "healthy" if ok else "unhealthy")
        replica.healthy = ok

    async def check_health_once(self) -> None:
        await asyncio.gather(*(self._health(r) for r in self.replicas))

    async def _discover(self, model: str, spec: dict) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(spec["host"], spec["port"], type=socket.SOCK_STREAM),
                                           self.config.health_timeout_s)
        except (OSError, asyncio.TimeoutError):
            infos = []  # NXDOMAIN: a headless Service with no ready pod
        hosts = sorted({info[4][0] for info in infos})
        urls = [f"{spec['scheme']}://{'[' + h + ']' if ':' in h else h}:{spec['port']}" for h in hosts]
        current = {r.url: r for r in self.pools[model]}
        if urls:
            fresh = [current.get(u) or Replica(f"{model}@{u.split('://')[1]}", model, u,
                                               configured_capacity=self.model_capacity[model])
                     for u in urls]
        else:  # fall back to the static replicas (the model's Service)
            fresh = [current.get(r.url) or r for r in self.static[model]]
        if [r.url for r in fresh] != list(current):
            log.info("model %s replicas: %s", model, ", ".join(r.url for r in fresh) or "none")
        # In place: a replica that left is never chosen again; new ones wait for /health.
        self.pools[model][:] = fresh

    async def discover_once(self) -> None:
        await asyncio.gather(*(self._discover(m, spec) for m, spec in self.discovery.items()))

    async def discover_and_check(self) -> None:
        await self.discover_once()
        await self.check_health_once()

    async def _scrape(self, replica: Replica) -> None:
        if not replica.healthy:
            return
        timeout = aiohttp.ClientTimeout(total=max(0.2, min(self.config.poll_interval_s, 2.0)))
        try:
            async with self.session.get(replica.url + "/metrics", timeout=timeout) as resp:
                if resp.status != 200:
                    return
                text = (await resp.read()).decode("utf-8", "replace")
        except _UPSTREAM_ERRORS:
            return  # the old scrape ages out after metrics_stale_s
        replica.record_scrape(parse_queue_metrics(text), time.monotonic())

    async def scrape_once(self) -> None:
        await asyncio.gather(*(self._scrape(r) for r in self.replicas))

    # -- handlers ----------------------------------------------------------------------
    async def handle_health(self, _request: web.Request) -> web.Response:
        models = {name: {"replicas": len(pool), "healthy": sum(r.routable() for r in pool)}
                  for name, pool in self.pools.items()}
        return web.json_response({"status": "ok", "policy": self.config.policy, "models": models})

    async def handle_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(self.replicas),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def handle_models(self, _request: web.Request) -> web.Response:
        data = [{"id": name, "object": "model", "created": int(self.started_at), "owned_by": "llmops",
                 "llmops": {"replicas": len(pool), "healthy_replicas": sum(r.routable() for r in pool)}}
                for name, pool in self.pools.items()]
        return web.json_response({"object": "list", "data": data})

    async def handle_not_found(self, request: web.Request) -> web.Response:
        return error_response(404, f"{request.method} {request.path} is not served by this router",
                              "invalid_request_error", "not_found")

    async def handle_proxy(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.read()
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
            return error_response(400, "the request body must be JSON with a `model` field",
                                  "invalid_request_error", "invalid_request", "model")
        model = payload["model"]
        pool = self.pools.get(model)
        if pool is None:
            self.metrics.requests.inc(model, "404")
            return error_response(404, f"The model `{model}` does not exist. Served models: "
                                  f"{', '.join(sorted(self.pools))}",
                                  "invalid_request_error", "model_not_found", "model")
        session = request.headers.get(self.config.session_header) or payload.get("user")
        candidates = self.chooser.order(model, pool, self.config.policy_for(model),
                                        str(session) if session else None)
        candidates = candidates[: 1 + self.config.max_retries]
        response: web.StreamResponse | None = None
        for attempt, replica in enumerate(candidates):
            if attempt:
                self.metrics.retries.inc(model)
            response = await self._forward(request, replica, body, model,
                                           last=attempt == len(candidates) - 1)
            if response is not None:
                break
        if response is None:
            response = error_response(
                503, f"No healthy replica for model `{model}`"
                + (" (every replica tried failed)" if candidates else ""),
                "service_unavailable", "no_healthy_replica", headers={"Retry-After": "1"})
        self.metrics.requests.inc(model, str(response.status))
        self.metrics.duration.observe(time.monotonic() - started, model)
        return response

    async def _forward(self, request: web.Request, replica: Replica, body: bytes, model: str,
                       last: bool) -> web.StreamResponse | None:
        """Send to one replica. None means it failed before anything reached the client."""
        cfg = self.config
        epoch = replica.start_request()
        self.metrics.choices.inc(model, replica.name)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout_s,
                                        sock_read=cfg.upstream_timeout_s)
        sent = time.monotonic()
        upstream: aiohttp.ClientResponse | None = None
        clean = False
        try:
            try:
                upstream = await self.session.post(replica.url + request.path_qs, data=body,
                                                   headers=headers, timeout=timeout)
                if upstream.status in _RETRY_STATUSES and not last:
                    self.metrics.errors.inc(model, replica.name, f"http_{upstream.status}")
                    return None
                # Read the first chunk before answering: a replica that dies now is retried.
                first = await upstream.content.readany()
            except _UPSTREAM_ERRORS as exc:
                self.metrics.errors.inc(model, replica.name, "connect")
                log.warning("replica %s failed before responding (%r): ejected for %ss",
                            replica.name, exc, cfg.eject_s)
                replica.eject(cfg.eject_s)
                return None
            self.metrics.ttfb.observe(time.monotonic() - sent, model, replica.name)
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            out_headers["X-Llmops-Replica"] = replica.name
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                          headers=out_headers)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            try:
                await response.prepare(request)
                if first:
                    await response.write(first)
                while True:
                    try:
                        chunk = await upstream.content.readany()
                    except _UPSTREAM_ERRORS as exc:
                        # Bytes already reached the client: no retry. Drop the client
                        # connection without the final chunk, so it sees a broken stream
                        # rather than a clean but truncated one.
                        self.metrics.errors.inc(model, replica.name, "midstream")
                        log.warning("replica %s broke mid-stream (%r): ejected for %ss",
                                    replica.name, exc, cfg.eject_s)
                        replica.eject(cfg.eject_s)
                        if request.transport is not None:
                            request.transport.close()
                        return response
                    if not chunk:
                        break
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                # The client went away. Closing the upstream connection (finally) makes
                # vLLM abort the request instead of generating for nobody.
                self.metrics.errors.inc(model, replica.name, "client_disconnected")
                return response
            clean = True
            return response
        finally:
            replica.end_request(epoch)
            if upstream is not None:
                if clean:
                    upstream.release()  # connection back to the pool
                else:
                    upstream.close()  # client gone or error: vLLM aborts the request


def create_app(config: RouterConfig) -> web.Application:
    router = Router(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[ROUTER_KEY] = router
    app.on_startup.append(router.start)
    app.on_cleanup.append(router.stop)
    app.router.add_get("/health", router.handle_health)
    app.router.add_get("/metrics", router.handle_metrics)
    app.router.add_get("/v1/models", router.handle_models)
    app.router.add_post("/v1/{tail:.*}", router.handle_proxy)
    app.router.add_route("*", "/{tail:.*}", router.handle_not_found)
    return app
