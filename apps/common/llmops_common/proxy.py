"""Talking to the upstream (a vLLM replica for the router, the router for the gateway): one
pooled client session, the first-chunk handshake and the chunk-by-chunk relay to the client."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from aiohttp import web

# Everything an upstream can fail with, before or while it answers.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)
TIMEOUT_ERRORS = (asyncio.TimeoutError,)  # aiohttp's ServerTimeoutError is one too


def new_session() -> aiohttp.ClientSession:
    # limit=0: one pooled connection per concurrent stream (the default pool of 100 would cap
    # streams at 100); keep-alive saves a TCP handshake per request, most of a proxy's added
    # latency; auto_decompress off: bytes pass through exactly as the upstream sent them.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False)


def stream_timeout(connect_s: float, read_s: float) -> aiohttp.ClientTimeout:
    """No limit on a whole stream; `read_s` is the longest wait for headers or between chunks."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=read_s)


async def probe(session: aiohttp.ClientSession, url: str, timeout_s: float) -> str | None:
    """None when GET url answers 200 within timeout_s; otherwise why not."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return None if resp.status == 200 else f"{url} answered {resp.status}"
    except TIMEOUT_ERRORS:
        return f"{url} timed out after {timeout_s:g} s"
    except UPSTREAM_ERRORS as exc:
        return f"{url} unreachable ({type(exc).__name__})"


async def send(session: aiohttp.ClientSession, method: str, url: str, body: bytes | None, headers: dict,
               timeout: aiohttp.ClientTimeout) -> tuple[aiohttp.ClientResponse, bytes]:
    """Send a request and read its first body chunk: an upstream that fails now has sent the
    client nothing, so the caller may still retry or answer with an error of its own."""
    upstream = await session.request(method, url, data=body, headers=headers, timeout=timeout)
    try:
        return upstream, await upstream.content.readany()
    except BaseException:
        upstream.close()
        raise


@dataclass
class Relayed:
    response: web.StreamResponse
    upstream_error: BaseException | None = None  # the upstream broke after bytes reached the client
    client_gone: bool = False


async def relay(request: web.Request, upstream: aiohttp.ClientResponse, first: bytes,
                headers: dict[str, str]) -> Relayed:
    """Answer with the upstream's status, `headers` and body, every chunk written as it arrives
    (no buffering). The upstream connection goes back to the pool only when its body ended;
    otherwise it is closed, which makes vLLM abort a request nobody reads any more. After an
    upstream error the response is open: the caller ends it as its clients expect."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    result = Relayed(response)
    try:
        await response.prepare(request)
        if first:
            await response.write(first)
        while True:
            try:
                chunk = await upstream.content.readany()
            except UPSTREAM_ERRORS as exc:
                result.upstream_error = exc
                return result
            if not chunk:
                break
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        result.client_gone = True
    finally:
        if result.upstream_error or result.client_gone:
            upstream.close()
        else:
            upstream.release()
    return result
