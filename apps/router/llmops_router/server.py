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

from llmops_common.errors import error_response
from llmops_common.proxy import UPSTREAM_ERRORS, new_session, probe, relay, send, stream_timeout
from llmops_common.service import application

from .config import RouterConfig
from .policies import Chooser
from .prefix import prefix_blocks
from .replicas import Replica
from .telemetry import RouterMetrics
from .vllm_metrics import parse_queue_metrics

log = logging.getLogger("llmops_router")

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes itself.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
# Replica overloaded or going away: try another one, the answer may differ there.
_RETRY_STATUSES = {502, 503, 504}


class Router:
    def __init__(self, config: RouterConfig):
        self.config = config
        self.pools: dict[str, list[Replica]] = {
            m.name: [Replica(r.name, m.name, r.url, configured_capacity=r.max_num_seqs or m.max_num_seqs)
                     for r in m.replicas] for m in config.models}
        self.model_capacity = {m.name: m.max_num_seqs for m in config.models}
        # Served name -> the model whose replicas serve it: the model itself, or for a LoRA
        # adapter its base model (vLLM --lora-modules; the body goes unchanged).
        # In config order, each model followed by its adapters (how /v1/models lists them).
        self.routes = {name: m.name for m in config.models for name in [m.name, *(a.name for a in m.adapters)]}
        self.adapters = {m.name: [a.name for a in m.adapters] for m in config.models}
        self.static = {name: list(pool) for name, pool in self.pools.items()}
        self.discovery = {m.name: m.discovery for m in config.models if m.discovery}
        self.chooser = Chooser(config)
        self.metrics = RouterMetrics(lambda: self.replicas)
        self.timeout = stream_timeout(config.connect_timeout_s, config.upstream_timeout_s)
        self.session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self.started_at = time.time()

    @property
    def replicas(self) -> list[Replica]:
        return [r for pool in self.pools.values() for r in pool]

    def _scrapes(self) -> bool:
        return any(self.config.policy_for(name) in ("queue_aware", "session_affinity", "prefix_aware")
                   for name in self.routes)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, _app: web.Application | None = None) -> None:
        self.session = new_session()
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
        ok = await probe(self.session, replica.url + "/health", self.config.health_timeout_s) is None
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
        sent_at = time.monotonic()
        try:
            async with self.session.get(replica.url + "/metrics", timeout=timeout) as resp:
                if resp.status != 200:
                    return
                text = (await resp.read()).decode("utf-8", "replace")
        except UPSTREAM_ERRORS:
            return  # the old scrape ages out after metrics_stale_s
        replica.record_scrape(parse_queue_metrics(text), time.monotonic(), sent_at)

    async def scrape_once(self) -> None:
        await asyncio.gather(*(self._scrape(r) for r in self.replicas))

    # -- handlers ----------------------------------------------------------------------
    async def handle_health(self, _request: web.Request) -> web.Response:
        models = {name: {"replicas": len(pool), "healthy": sum(r.routable() for r in pool),
                         **({"adapters": self.adapters[name]} if self.adapters[name] else {})}
                  for name, pool in self.pools.items()}
        return web.json_response({"status": "ok", "policy": self.config.policy, "models": models})

    async def handle_models(self, _request: web.Request) -> web.Response:
        data = []
        for name, base in self.routes.items():
            pool = self.pools[base]
            entry = {"id": name, "object": "model", "created": int(self.started_at), "owned_by": "llmops",
                     "llmops": {"replicas": len(pool), "healthy_replicas": sum(r.routable() for r in pool)}}
            if name != base:
                entry["parent"] = base  # a LoRA adapter, as vLLM lists it
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

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
        base = self.routes.get(model)
        if base is None:
            self.metrics.requests.labels(model, "404").inc()
            return error_response(404, f"The model `{model}` does not exist. Served models: "
                                  f"{', '.join(sorted(self.routes))}",
                                  "invalid_request_error", "model_not_found", "model")
        pool = self.pools[base]
        session = request.headers.get(self.config.session_header) or payload.get("user")
        policy = self.config.policy_for(model)
        prefix = (prefix_blocks(model, payload, self.config.prefix_block_chars, self.config.prefix_max_blocks)
                  if policy == "prefix_aware" else [])
        # Rotation per pool (an adapter shares its model's replicas); prefixes per served name
        # (vLLM caches an adapter's prefixes apart from the base model's).
        candidates = self.chooser.order(base, pool, policy, str(session) if session else None, prefix)
        candidates = candidates[: 1 + self.config.max_retries]
        response: web.StreamResponse | None = None
        for attempt, replica in enumerate(candidates):
            if attempt:
                self.metrics.retries.labels(model).inc()
            self.chooser.record(replica, prefix)
            response = await self._forward(request, replica, body, model,
                                           last=attempt == len(candidates) - 1)
            if response is not None:
                break
        if response is None:
            response = error_response(
                503, f"No healthy replica for model `{model}`"
                + (" (every replica tried failed)" if candidates else ""),
                "service_unavailable", "no_healthy_replica", headers={"Retry-After": "1"})
        self.metrics.finished(model, response.status, time.monotonic() - started)
        return response

    async def _forward(self, request: web.Request, replica: Replica, body: bytes, model: str,
                       last: bool) -> web.StreamResponse | None:
        """Send to one replica. None means it failed before anything reached the client."""
        token = replica.start_request()
        self.metrics.choices.labels(model, replica.name).inc()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        sent = time.monotonic()
        try:
            try:
                upstream, first = await send(self.session, "POST", replica.url + request.path_qs, body, headers,
                                             self.timeout)
            except UPSTREAM_ERRORS as exc:
                self._eject(replica, model, "connect", exc, "failed before responding")
                return None
            if upstream.status in _RETRY_STATUSES and not last:
                upstream.close()
                self.metrics.errors.labels(model, replica.name, f"http_{upstream.status}").inc()
                return None
            self.metrics.first_byte.labels(model, replica.name).observe(time.monotonic() - sent)
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            out_headers["X-Llmops-Replica"] = replica.name
            relayed = await relay(request, upstream, first, out_headers)
            if relayed.upstream_error is not None:
                # Bytes already reached the client: no retry. Drop the client connection
                # without the final chunk, so it sees a broken stream rather than a clean but
                # truncated one.
                self._eject(replica, model, "midstream", relayed.upstream_error, "broke mid-stream")
                if request.transport is not None:
                    request.transport.close()
            elif relayed.client_gone:
                self.metrics.errors.labels(model, replica.name, "client_disconnected").inc()
            return relayed.response
        finally:
            replica.end_request(token)

    def _eject(self, replica: Replica, model: str, kind: str, exc: BaseException, what: str) -> None:
        self.metrics.errors.labels(model, replica.name, kind).inc()
        log.warning("replica %s %s (%r): ejected for %ss", replica.name, what, exc, self.config.eject_s)
        replica.eject(self.config.eject_s)


def create_app(config: RouterConfig) -> web.Application:
    router = Router(config)
    return application(router, "router", [
        ("GET", "/health", router.handle_health),
        ("GET", "/v1/models", router.handle_models),
        ("POST", "/v1/{tail:.*}", router.handle_proxy),
    ], client_max_size=64 * 1024 * 1024)
