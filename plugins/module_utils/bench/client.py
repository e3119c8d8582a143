"""Async streaming OpenAI client: closed-loop concurrency, one record per request.

Endpoint failures are data, not exceptions: every request ends as a RequestRecord with an
error class, and the run always returns. Time comes from perf_counter (monotonic).
"""
from __future__ import annotations

import asyncio
import errno
import functools
import json
import os
import time
from collections import deque
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
from aiohttp.client_proto import ResponseHandler

from . import rxstamp
from .config import BenchConfig
from .records import RequestRecord, RunResult
from .workload import RequestSpec, build_requests

__all__ = ["Counters", "Phase", "RequestRecord", "RunResult", "run", "run_benchmark", "run_phase"]

# Open-loop sends sleep until this close to their deadline, then yield-spin: asyncio's timer
# granularity alone would put ~1 ms of jitter on every scheduled send.
_SPIN_S = 0.0015
# Saturation guard: sample in-flight requests every window; stop when it grew in each of
# the last SAT_WINDOWS samples to more than SAT_GROWTH x the first and at least SAT_MIN.
SAT_WINDOW_S = 1.0
SAT_WINDOWS = 5
SAT_GROWTH = 2.0
SAT_MIN = 16

_ERROR_BODY_BYTES = 2048
# "kernel" (default where supported): chunk arrival from the kernel's receive stamps;
# "loop": from the event loop's clock when the protocol gets the bytes (for comparison).
RX_CLOCK_ENV = "LLMOPS_BENCH_RX_CLOCK"


# A run stops early when this many requests in a row failed because the server is gone
# (refused connections, resets, cut streams), at least one of them refused: nothing listens
# any more, and thousands of refused requests would only bury the first real error.
GONE_AFTER = 3
SERVER_GONE = ("connection_refused", "connection_reset", "stream_cut")
GONE_REASON = "server vanished"


def _headers(config: BenchConfig) -> Dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    headers.update(config.headers)  # --header wins, as in curl
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
    before = rec.output_tokens or 0
    if isinstance(usage, dict):
        rec.input_tokens = _token_count(usage.get("prompt_tokens"))
        rec.output_tokens = _token_count(usage.get("completion_tokens"))
    if _has_content(obj):
        if rec.ttft_s is None:
            rec.ttft_s = now
        else:
            rec.itl_s.append(now - rec.chunk_times[-1])
        rec.chunk_times.append(now)
        if isinstance(usage, dict) and rec.output_tokens is not None:
            # Running usage on content chunks (vLLM continuous_usage_stats): the delta is
            # what this chunk carried, so multi-token chunks are counted, not guessed.
            rec.chunk_tokens.append(rec.output_tokens - before)
    return True


def _spread_gaps(gaps: List[float], first: int) -> None:
    """Several tokens that arrived in one network read (a loaded client or server batches
    them) share one timestamp: the first gets the whole wait, the rest 0 ms. Spread the wait
    evenly over them instead, so ITL percentiles are not a pile of zeros plus spikes; the
    sum, hence mean ITL and TPOT, is unchanged."""
    count = len(gaps) - first
    if count > 1:
        share = sum(gaps[first:]) / count
        gaps[first:] = [share] * count


class StampedHandler(ResponseHandler):
    """aiohttp's connection protocol, noting when bytes last arrived. Over a StampTransport
    that is the kernel's receive stamp of the newest packet read (rxstamp.py); otherwise the
    protocol's clock, which still beats the reader's: when many streams' chunks arrive at
    once (64 first tokens in one burst), the loop hands every socket's bytes to its protocol
    first and only then resumes the readers one by one."""

    rx_last: float = 0.0

    def data_received(self, data: bytes) -> None:
        if data:
            self.rx_last = getattr(self.transport, "rx_stamp", 0.0) or time.perf_counter()
        super().data_received(data)


def _arrival(proto: Any) -> float:
    """When the bytes just read had all arrived: the latest byte's arrival on this connection
    (one response at a time per connection, so never earlier than any event in this read,
    never later than now); without a stamping protocol, now."""
    now = time.perf_counter()
    stamp = getattr(proto, "rx_last", 0.0)
    return stamp if 0.0 < stamp < now else now


async def _consume_stream(resp: aiohttp.ClientResponse, rec: RequestRecord, start: float) -> None:
    buffer = b""
    done = False
    proto = resp.connection.protocol if resp.connection is not None else None
    # iter_any hands over whatever arrived; one timestamp per network read (when its last
    # byte arrived) is the honest arrival time for every event in it. Bounded by the
    # request's total timeout.
    async for data in resp.content.iter_any():
        now = _arrival(proto) - start
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        gaps_before = len(rec.itl_s)
        chunks_before = len(rec.chunk_times)
        for line in lines:
            line = line.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue  # blank separators, ": keep-alive" comments, event: lines
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
            elif not _handle_event(payload, now, rec):
                return
        if len(rec.chunk_times) > chunks_before:
            rec.reads += 1
        _spread_gaps(rec.itl_s, gaps_before)
    end = time.perf_counter() - start
    if not done:
        rec.fail("stream_cut", f"stream ended without [DONE] after {len(rec.chunk_times)} "
                               "content chunks")
        return
    rec.e2e_s = end


def _reset_by_peer(exc: BaseException) -> bool:
    """The server side closed the connection (RST or EOF) rather than our side failing."""
    if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionResetError)):
        return True
    if isinstance(exc, aiohttp.ClientOSError):
        return exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED) or \
            "reset by peer" in str(exc).lower()
    return False


def _classify(exc: BaseException, rec: RequestRecord) -> None:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        rec.fail("timeout", f"no complete response within request_timeout_s ({text})")
    elif isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError) or "refused" in text.lower()
        rec.fail("connection_refused" if refused else "client_error", text)
    elif rec.status == 200 and (isinstance(exc, aiohttp.ClientPayloadError) or _reset_by_peer(exc)):
        rec.fail("stream_cut", text)  # the response had begun: the server cut its stream
    elif _reset_by_peer(exc):
        rec.fail("connection_reset", text)  # the server dropped the connection before answering
    else:
        rec.fail("client_error", text)


class GoneWatch:
    """Counts consecutive server-gone failures of one phase; `reason` is set once it is sure."""

    def __init__(self) -> None:
        self.streak: List[str] = []
        self.successes = 0
        self.reason: Optional[str] = None

    def saw(self, rec: RequestRecord) -> None:
        if rec.ok:
            self.successes += 1
            self.streak = []
        elif rec.error_class in SERVER_GONE:
            self.streak.append(rec.error_class)
            if (self.reason is None and len(self.streak) >= GONE_AFTER
                    and "connection_refused" in self.streak):
                self.reason = (f"{GONE_REASON}: {len(self.streak)} requests in a row failed "
                               f"({', '.join(sorted(set(self.streak)))}) after "
                               f"{self.successes} succeeded; the run stopped early")
        else:
            self.streak = []


class Counters:
    """Live numbers a progress display reads; updated in place by the senders."""

    def __init__(self, planned: int = 0) -> None:
        self.planned = planned
        self.sent = 0
        self.done = 0
        self.failed = 0
        self.in_flight = 0
        self.label = ""


def _on_written(session: Any, ctx: Any, params: Any) -> Any:
    # aiohttp trace hook: the last header/body write is when the request is on the wire.
    rec = ctx.trace_request_ctx
    if isinstance(rec, dict):
        rec["written"] = time.perf_counter()

    async def noop() -> None:
        return None
    return noop()


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_on_written)
    trace.on_request_chunk_sent.append(_on_written)
    return trace


async def _send_one(session: aiohttp.ClientSession, url: str, spec: RequestSpec,
                    headers: Dict[str, str], rec: RequestRecord, t0: float,
                    counters: Optional[Counters] = None, gone: Optional[GoneWatch] = None) -> None:
    start = time.perf_counter()
    rec.send_s = start - t0
    rec.dispatch_lag_s = max(0.0, rec.send_s - rec.scheduled_s)
    rec.send_wall = time.time()
    rec.prompt_tokens_target = spec.prompt_tokens
    rec.max_tokens = spec.max_tokens
    marks: Dict[str, float] = {}
    if counters:
        counters.sent += 1
        counters.in_flight += 1
    try:
        async with session.post(url, data=spec.body, headers=headers,
                                trace_request_ctx=marks) as resp:
            written = marks.get("written", start)
            rec.queue_s = written - start
            rec.status = resp.status
            if resp.status != 200:
                detail = await resp.content.read(_ERROR_BODY_BYTES)
                rec.fail(f"http_{resp.status}", detail.decode("utf-8", "replace"))
            else:
                await _consume_stream(resp, rec, written)
    except asyncio.CancelledError:
        raise  # run_timeout_s: the phase marks this record
    except Exception as exc:  # noqa: BLE001 - every failure must become a record, not a crash
        _classify(exc, rec)
    finally:
        rec.end_s = time.perf_counter() - t0
        if gone is not None:
            gone.saw(rec)
        if counters:
            counters.in_flight -= 1
            counters.done += 1
            counters.failed += 0 if rec.ok else 1


class Phase:
    """One measured (or warm-up) phase: a list of requests and how to send them."""

    def __init__(self, config: BenchConfig, specs: List[RequestSpec],
                 offsets: Optional[List[float]] = None, concurrency: Optional[int] = None,
                 max_concurrency: Optional[int] = None, guard: bool = False,
                 min_s: float = 0.0, max_s: Optional[float] = None) -> None:
        self.config = config
        self.specs = specs
        self.offsets = offsets            # None: closed loop
        self.concurrency = concurrency or config.concurrency_levels[0]
        self.max_concurrency = max_concurrency
        self.guard = guard
        # Closed loop: keep sending (prompts cycle) until min_s; no new request after max_s.
        self.min_s = min_s
        self.max_s = max_s
        self.gone = GoneWatch()


async def _closed_loop(session: aiohttp.ClientSession, phase: Phase, t0: float,
                       deadline: float, records: List[RequestRecord],
                       counters: Optional[Counters]) -> Tuple[int, bool, Optional[str]]:
    """Closed loop: `concurrency` workers each send the next request when theirs finishes.
    All planned requests are sent; past them, workers keep going (prompts cycle) until
    min_s; nothing new starts after max_s (those requests are not planned, not "unsent")."""
    pending = deque(range(len(phase.specs)))
    headers = _headers(phase.config)
    begin = time.perf_counter()
    min_end = begin + phase.min_s
    stop_at = min(deadline, begin + phase.max_s) if phase.max_s else deadline
    counter = [len(phase.specs)]

    def next_index() -> Optional[int]:
        if pending:
            return pending.popleft()
        if time.perf_counter() < min_end:
            counter[0] += 1
            return counter[0] - 1
        return None

    async def worker() -> None:
        while time.perf_counter() < stop_at and phase.gone.reason is None:
            index = next_index()
            if index is None:
                return
            rec = RequestRecord(index=index, scheduled_s=time.perf_counter() - t0)
            records.append(rec)
            await _send_one(session, phase.config.url, phase.specs[index % len(phase.specs)],
                            headers, rec, t0, counters, phase.gone)

    width = phase.concurrency if phase.min_s > 0 else min(phase.concurrency, len(phase.specs))
    tasks = [asyncio.ensure_future(worker()) for _worker in range(width)]
    late = await _finish_by(tasks, deadline)
    capped = stop_at < deadline and time.perf_counter() >= stop_at
    unsent = 0 if (capped or phase.gone.reason) else len(pending)
    return unsent, bool(late or unsent), phase.gone.reason


async def _finish_by(tasks: list, deadline: float) -> set:
    """Wait for the tasks until the run's deadline; cancel and return those still running."""
    if not tasks:
        return set()
    _done, late = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    return late


async def _wait_until(target: float) -> None:
    delay = target - time.perf_counter() - _SPIN_S
    if delay > 0:
        await asyncio.sleep(delay)
    while time.perf_counter() < target:
        await asyncio.sleep(0)  # yield-spin: streams keep being read meanwhile


async def _open_loop(session: aiohttp.ClientSession, phase: Phase, t0: float,
                     deadline: float, records: List[RequestRecord],
                     counters: Optional[Counters]) -> Tuple[int, bool, Optional[str]]:
    """Open loop: request i is due at start + offsets[i], whatever happened before it."""
    headers = _headers(phase.config)
    offsets = phase.offsets or []
    cap = asyncio.Semaphore(phase.max_concurrency) if phase.max_concurrency else None
    tasks: List["asyncio.Task[None]"] = []
    in_flight = [0]
    samples: List[int] = []
    next_sample = [0.0]
    stop_reason: Optional[str] = None

    async def send(rec: RequestRecord, spec: RequestSpec) -> None:
        try:
            await _send_one(session, phase.config.url, spec, headers, rec, t0, counters,
                            phase.gone)
        finally:
            in_flight[0] -= 1
            if cap:
                cap.release()

    start = time.perf_counter() + 0.005  # a little slack so request 0 is not born late
    next_sample[0] = start + SAT_WINDOW_S
    sent = 0
    stop_at = min(deadline, start + phase.max_s) if phase.max_s else deadline
    capped = 0
    for index, offset in enumerate(offsets):
        target = start + offset
        if target >= stop_at and stop_at < deadline:
            capped = len(offsets) - index  # max_seconds: a chosen bound, not a failure
            break
        if target >= deadline:
            break
        if phase.gone.reason:
            stop_reason = phase.gone.reason
            break
        await _wait_until(target)
        if cap:
            await cap.acquire()  # a full cap delays the send: it shows up as dispatch lag
        now = time.perf_counter()
        if now >= deadline:
            if cap:
                cap.release()
            break
        if phase.guard and now >= next_sample[0]:
            next_sample[0] = now + SAT_WINDOW_S
            samples.append(in_flight[0])
            window = samples[-(SAT_WINDOWS + 1):]
            if (len(window) == SAT_WINDOWS + 1 and window[-1] >= SAT_MIN
                    and all(b > a for a, b in zip(window, window[1:]))
                    and window[-1] > SAT_GROWTH * max(window[0], 1)):
                stop_reason = (f"saturated: requests in flight grew from {window[0]} to "
                               f"{window[-1]} over {SAT_WINDOWS * SAT_WINDOW_S:g}s")
                if cap:
                    cap.release()
                break
        rec = RequestRecord(index=index, scheduled_s=target - t0)
        records.append(rec)
        in_flight[0] += 1
        tasks.append(asyncio.ensure_future(send(rec, phase.specs[index % len(phase.specs)])))
        sent += 1
    late = await _finish_by(tasks, deadline)
    stop_reason = stop_reason or phase.gone.reason
    not_sent = len(offsets) - sent - capped
    return not_sent, bool(late or (not_sent and not stop_reason)), stop_reason


async def run_phase(session: aiohttp.ClientSession, phase: Phase, t0: float, deadline: float,
                    counters: Optional[Counters] = None) -> RunResult:
    records: List[RequestRecord] = []
    started_wall = time.time()
    if phase.offsets is None:
        not_sent, hit_deadline, stop = await _closed_loop(session, phase, t0, deadline,
                                                          records, counters)
    else:
        not_sent, hit_deadline, stop = await _open_loop(session, phase, t0, deadline,
                                                        records, counters)
    ended_wall = time.time()
    for rec in records:
        if rec.e2e_s is None and rec.error_class is None:
            rec.fail("timeout", "run_timeout_s reached before the request finished")
    ends = [r.end_s for r in records if r.end_s is not None]
    duration = (max(ends) - min(r.send_s for r in records)) if ends else 0.0
    if hit_deadline and not stop:
        stop = f"run_timeout_s ({phase.config.run_timeout_s:g}s) reached"
    return RunResult(config=phase.config, records=sorted(records, key=lambda r: r.index),
                     started_wall=started_wall, ended_wall=ended_wall, duration_s=duration,
                     not_sent=not_sent, stopped_reason=stop,
                     saturated=bool(stop and stop.startswith("saturated")))


def open_session(config: BenchConfig) -> aiohttp.ClientSession:
    # limit=0: aiohttp's default pool caps at 100 connections, which would queue requests
    # inside the client and show up as server TTFT above 100 streams.
    kernel = rxstamp.supported() and os.environ.get(RX_CLOCK_ENV, "kernel") == "kernel"
    connector_class = rxstamp.StampConnector if kernel else aiohttp.TCPConnector
    connector = connector_class(limit=0, limit_per_host=0)
    factory = getattr(connector, "_factory", None)
    if isinstance(factory, functools.partial) and factory.func is ResponseHandler:
        # Arrival stamps at the protocol (StampedHandler); an aiohttp without this hook
        # point falls back to the reader's clock.
        connector._factory = functools.partial(StampedHandler, *factory.args, **factory.keywords)
    timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)
    # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute benchmark traffic.
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                 trace_configs=[_trace_config()])


async def run_benchmark(config: BenchConfig) -> RunResult:
    """The closed-loop run with warm-up (the v1 entry point; engine.py runs every profile)."""
    warm_specs = build_requests(config, config.warmup_requests, salt="w")
    specs = build_requests(config, config.num_requests, salt="m")
    t0 = time.perf_counter()
    deadline = t0 + config.run_timeout_s
    async with open_session(config) as session:
        warm = await run_phase(session, Phase(config, warm_specs), t0, deadline)
        result = await run_phase(session, Phase(config, specs), t0, deadline)
    result.warmup_completed = sum(1 for r in warm.records if r.ok)
    result.concurrency = config.concurrency
    return result


def run(config: BenchConfig) -> RunResult:
    return asyncio.run(run_benchmark(config))
