"""Async streaming OpenAI client: closed-loop concurrency, one record per request.

Endpoint failures are data, not exceptions: every request ends as a RequestRecord with an
error class, and the run always returns. Time comes from perf_counter (monotonic).
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

from .config import BenchConfig
from .records import RequestRecord, RunResult
from .workload import encoded_bodies

__all__ = ["RequestRecord", "RunResult", "run", "run_benchmark"]

_ERROR_BODY_BYTES = 2048


def _headers(config: BenchConfig) -> Dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _has_content(obj: Dict[str, Any]) -> bool:
    # vLLM's first chat chunk carries only the role with content "": it is not a token, so
    # counting it would shrink TTFT and add a fake ITL gap.
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"):
                return True
        elif choice.get("text"):
            return True
    return False


def _token_count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _handle_event(payload: bytes, now: float, rec: RequestRecord) -> bool:
    """Apply one SSE data payload to the record; returns False once the record has failed."""
    try:
        obj = json.loads(payload)
    except ValueError:
        rec.fail("invalid_response", f"unparseable chunk: {payload[:120]!r}")
        return False
    if not isinstance(obj, dict):
        rec.fail("invalid_response", f"chunk is not an object: {payload[:120]!r}")
        return False
    if obj.get("error") and not obj.get("choices"):
        rec.fail("invalid_response", f"server error in stream: {json.dumps(obj['error'])}")
        return False
    usage = obj.get("usage")
    if isinstance(usage, dict):
        rec.input_tokens = _token_count(usage.get("prompt_tokens"))
        rec.output_tokens = _token_count(usage.get("completion_tokens"))
    if _has_content(obj):
        if rec.ttft_s is None:
            rec.ttft_s = now
        else:
            rec.itl_s.append(now - rec.chunk_times[-1])
        rec.chunk_times.append(now)
    return True


async def _consume_stream(resp: aiohttp.ClientResponse, rec: RequestRecord, start: float) -> None:
    buffer = b""
    done = False
    # iter_any hands over whatever arrived; one timestamp per network read is the honest
    # arrival time for every event in it. Bounded by the request's total timeout.
    async for data in resp.content.iter_any():
        now = time.perf_counter() - start
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue  # blank separators, ": keep-alive" comments, event: lines
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
            elif not _handle_event(payload, now, rec):
                return
    end = time.perf_counter() - start
    if not done:
        rec.fail("stream_cut", f"stream ended without [DONE] after {len(rec.chunk_times)} "
                               "content chunks")
        return
    rec.e2e_s = end


def _classify(exc: BaseException, rec: RequestRecord) -> None:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        rec.fail("timeout", f"no complete response within request_timeout_s ({text})")
    elif isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError) or "refused" in text.lower()
        rec.fail("connection_refused" if refused else "client_error", text)
    elif rec.status == 200 and isinstance(exc, (aiohttp.ClientPayloadError,
                                                aiohttp.ServerDisconnectedError,
                                                aiohttp.ClientOSError)):
        rec.fail("stream_cut", text)
    else:
        rec.fail("client_error", text)


async def _send_one(session: aiohttp.ClientSession, url: str, body: bytes,
                    headers: Dict[str, str], rec: RequestRecord, t0: float) -> None:
    start = time.perf_counter()
    rec.send_s = start - t0
    rec.send_wall = time.time()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            rec.status = resp.status
            if resp.status != 200:
                detail = await resp.content.read(_ERROR_BODY_BYTES)
                rec.fail(f"http_{resp.status}", detail.decode("utf-8", "replace"))
            else:
                await _consume_stream(resp, rec, start)
    except asyncio.CancelledError:
        raise  # run_timeout_s: the phase marks this record
    except Exception as exc:  # noqa: BLE001 - every failure must become a record, not a crash
        _classify(exc, rec)
    finally:
        rec.end_s = time.perf_counter() - t0


async def _run_phase(session: aiohttp.ClientSession, config: BenchConfig, bodies: List[bytes],
                     t0: float, deadline: float) -> Tuple[List[RequestRecord], int, bool]:
    """Closed loop: `concurrency` workers each send the next request when theirs finishes."""
    pending = deque(range(len(bodies)))
    records: List[RequestRecord] = []
    headers = _headers(config)

    async def worker() -> None:
        while pending and time.perf_counter() < deadline:
            index = pending.popleft()
            rec = RequestRecord(index=index, scheduled_s=time.perf_counter() - t0)
            records.append(rec)
            await _send_one(session, config.url, bodies[index], headers, rec, t0)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(config.concurrency, len(bodies)))]
    late: set = set()
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    for rec in records:
        if rec.e2e_s is None and rec.error_class is None:
            rec.fail("timeout", "run_timeout_s reached before the request finished")
    return sorted(records, key=lambda r: r.index), len(pending), bool(late or pending)


async def run_benchmark(config: BenchConfig) -> RunResult:
    warmup_bodies = encoded_bodies(config, config.warmup_requests, salt="w")
    bodies = encoded_bodies(config, config.num_requests, salt="m")
    # limit=0: aiohttp's default pool caps at 100 connections, which would queue requests
    # inside the client and show up as server TTFT above 100 streams.
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)
    t0 = time.perf_counter()
    deadline = t0 + config.run_timeout_s
    # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute benchmark traffic.
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     trust_env=False) as session:
        warm, _, _ = await _run_phase(session, config, warmup_bodies, t0, deadline)
        started_wall = time.time()
        records, not_sent, hit_deadline = await _run_phase(session, config, bodies, t0, deadline)
        ended_wall = time.time()
    ends = [r.end_s for r in records if r.end_s is not None]
    duration = (max(ends) - min(r.send_s for r in records)) if ends else 0.0
    return RunResult(
        config=config,
        records=records,
        started_wall=started_wall,
        ended_wall=ended_wall,
        duration_s=duration,
        warmup_completed=sum(1 for r in warm if r.ok),
        not_sent=not_sent,
        stopped_reason=f"run_timeout_s ({config.run_timeout_s:g}s) reached" if hit_deadline else None,
    )


def run(config: BenchConfig) -> RunResult:
    return asyncio.run(run_benchmark(config))
