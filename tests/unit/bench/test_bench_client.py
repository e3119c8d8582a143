"""The streaming client against an in-process OpenAI-style server on 127.0.0.1.

Every scenario is bounded: small request counts, short delays, and run_timeout_s.
"""
import asyncio
import time

import aiohttp
import pytest
from fake_openai import FakeOpenAI, free_port, start  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench import client  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.client import (  # noqa: E402
    run_benchmark,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (  # noqa: E402
    BenchConfig,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import (  # noqa: E402
    summarize,
)

TTFT, ITL = 0.03, 0.01


async def serve_and_run(server, mode, **overrides):
    runner, port = await start(server)
    try:
        options = dict(base_url=f"http://127.0.0.1:{port}/{mode}", model="fixture",
                       num_requests=6, concurrency=3, max_tokens=5, prompt_tokens=12,
                       request_timeout_s=5.0, run_timeout_s=20.0)
        options.update(overrides)
        return await run_benchmark(BenchConfig(**options))
    finally:
        await runner.cleanup()


def test_streaming_records_ttft_itl_usage():
    server = FakeOpenAI(ttft=TTFT, itl=ITL)
    result = asyncio.run(serve_and_run(server, "ok", warmup_requests=2,
                                       additional_params={"temperature": 0.0}))
    assert len(server.bodies) == 8 and len(result.records) == 6  # warm-up sent, not kept
    assert result.warmup_completed == 2 and result.not_sent == 0
    assert [r.index for r in result.records] == list(range(6))
    assert server.max_inflight == 3  # closed loop: never more than `concurrency`
    body = server.bodies[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert body["ignore_eos"] is True and body["temperature"] == 0.0
    for rec in result.records:
        assert rec.ok and rec.status == 200 and rec.error_class is None
        assert rec.output_tokens == 5 and rec.input_tokens == 12
        assert len(rec.chunk_times) == 5 and len(rec.itl_s) == 4  # TTFT is not a gap
        assert rec.ttft_s == rec.chunk_times[0] and rec.ttft_s >= TTFT * 0.9
        # Chunks coalesced into one read share a timestamp (gap 0); the total cannot shrink.
        assert sum(rec.itl_s) >= 4 * ITL * 0.5
        assert rec.e2e_s >= rec.chunk_times[-1]
        assert rec.ttft_s + sum(rec.itl_s) == pytest.approx(rec.chunk_times[-1])
        assert rec.chunk_tokens == [1] * 5  # from running usage deltas
        assert rec.queue_s is not None and 0 <= rec.queue_s < 0.5
    summary = summarize(result)
    assert summary["valid"] and summary["itl_ms"]["n"] == 24
    assert summary["tokens"]["output_total"] == 30
    assert result.duration_s > TTFT + 4 * ITL
    prompts = [b["messages"][0]["content"] for b in server.bodies]
    assert len(set(prompts)) == 8  # warm-up prompts differ from measured ones


def test_completions_endpoint_counts_text_chunks():
    server = FakeOpenAI(ttft=TTFT, itl=ITL)
    result = asyncio.run(serve_and_run(server, "ok", endpoint="completions", num_requests=2))
    assert all(r.ok and len(r.chunk_times) == 5 for r in result.records)
    assert "prompt" in server.bodies[0]


def test_no_100_connection_cap():
    server = FakeOpenAI(ttft=0.4, itl=0.0)
    result = asyncio.run(serve_and_run(server, "ok", num_requests=150, concurrency=150,
                                       max_tokens=1))
    assert server.max_inflight == 150
    assert sum(r.ok for r in result.records) == 150


def test_http_500_is_recorded_and_run_is_invalid():
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), "fail500"))
    assert len(result.records) == 6
    assert {r.error_class for r in result.records} == {"http_500"}
    assert all(r.status == 500 and "fake error 500" in r.error for r in result.records)
    summary = summarize(result)
    assert summary["valid"] is False and summary["requests"]["error_classes"] == {"http_500": 6}


def test_mixed_failures_are_counted():
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), "flaky", num_requests=9))
    summary = summarize(result)
    assert summary["requests"]["failed"] == 3 and summary["requests"]["succeeded"] == 6
    assert summary["valid"] is False


@pytest.mark.parametrize("mode", ["cut", "nodone"])
def test_stream_cut_midway(mode):
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), mode))
    assert len(result.records) == 6
    for rec in result.records:
        assert rec.error_class == "stream_cut", rec.error
        assert rec.e2e_s is None and rec.status == 200
        assert len(rec.chunk_times) >= 2  # what arrived before the cut is kept for diagnosis


def test_connection_refused():
    port = free_port()  # bound then released: nothing listens there
    config = BenchConfig(base_url=f"http://127.0.0.1:{port}", model="m", num_requests=4,
                         concurrency=2, request_timeout_s=2.0, run_timeout_s=10.0)
    result = asyncio.run(run_benchmark(config))
    assert {r.error_class for r in result.records} == {"connection_refused"}
    assert summarize(result)["valid"] is False


def test_a_vanished_server_stops_the_run_early():
    """Nothing listens: a few refused requests, then a stop with that reason, not thousands."""
    port = free_port()
    config = BenchConfig(base_url=f"http://127.0.0.1:{port}", model="m", num_requests=500,
                         concurrency=4, request_timeout_s=2.0, run_timeout_s=10.0)
    result = asyncio.run(run_benchmark(config))
    assert len(result.records) <= client.GONE_AFTER + 4
    assert result.stopped_reason.startswith("server vanished") and "connection_refused" in result.stopped_reason
    summary = summarize(result)
    assert summary["valid"] is False and summary["requests"]["not_sent"] == 0


def test_reset_before_the_response_is_the_servers_failure():
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), "reset", num_requests=2, concurrency=1))
    assert [r.error_class for r in result.records] == ["connection_reset"] * 2


def test_classify_resets_and_cuts():
    from ansible_collections.llmops.platform.plugins.module_utils.bench.records import RequestRecord

    def classify(exc, status=None):
        rec = RequestRecord(index=0, status=status)
        client._classify(exc, rec)
        return rec.error_class

    reset = aiohttp.ClientOSError(104, "Connection reset by peer")
    assert classify(reset) == "connection_reset"
    assert classify(aiohttp.ServerDisconnectedError()) == "connection_reset"
    assert classify(reset, status=200) == "stream_cut"
    assert classify(aiohttp.ClientPayloadError("cut"), status=200) == "stream_cut"
    assert classify(ValueError("ours")) == "client_error"


def test_gone_watch_needs_a_refused_connection():
    from ansible_collections.llmops.platform.plugins.module_utils.bench.records import RequestRecord

    def failed(cls):
        rec = RequestRecord(index=0)
        rec.fail(cls, "x")
        return rec

    watch = client.GoneWatch()
    for cls in ("stream_cut", "connection_reset", "stream_cut", "connection_reset"):
        watch.saw(failed(cls))
    assert watch.reason is None  # cut streams alone: a flaky proxy, maybe; not proof of death
    watch.saw(failed("connection_refused"))
    assert watch.reason and "5 requests in a row" in watch.reason
    other = client.GoneWatch()
    for cls in ("connection_refused", "http_500", "connection_refused", "connection_refused"):
        other.saw(failed(cls))
    assert other.reason is None  # the streak was broken by an answer from the server


def test_request_timeout():
    started = time.perf_counter()
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), "slow", num_requests=2, concurrency=2,
                                       request_timeout_s=0.3))
    assert [r.error_class for r in result.records] == ["timeout", "timeout"]
    assert time.perf_counter() - started < 3.0


def test_run_timeout_bounds_the_whole_run():
    started = time.perf_counter()
    result = asyncio.run(serve_and_run(FakeOpenAI(ttft=TTFT, itl=ITL), "slow", num_requests=6, concurrency=2,
                                       request_timeout_s=10.0, run_timeout_s=0.5))
    assert time.perf_counter() - started < 3.0
    assert len(result.records) == 2 and result.not_sent == 4
    assert all(r.error_class == "timeout" and "run_timeout_s" in r.error for r in result.records)
    assert result.stopped_reason and "run_timeout_s" in result.stopped_reason
    summary = summarize(result)
    assert summary["valid"] is False and summary["requests"]["not_sent"] == 4


def test_tokens_arriving_in_one_read_share_the_wait():
    """Events batched into one network write must not read as 0 ms gaps plus one spike."""
    from aiohttp import web

    def event(text):
        return ('data: {"choices": [{"delta": {"content": "%s"}}]}\n\n' % text).encode()

    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(event("a"))
        await asyncio.sleep(0.05)
        await resp.write(event("b"))
        await asyncio.sleep(0.12)
        await resp.write(event("c") + event("d") + event("e"))  # one write, three tokens
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def scenario():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner, port = await start(app)
        try:
            return await run_benchmark(BenchConfig(
                base_url=f"http://127.0.0.1:{port}", model="m", num_requests=1, concurrency=1,
                max_tokens=5, prompt_tokens=4, request_timeout_s=5.0, run_timeout_s=10.0))
        finally:
            await runner.cleanup()
    rec = asyncio.run(scenario()).records[0]
    assert rec.ok and len(rec.itl_s) == 4
    assert rec.itl_s[0] >= 0.04
    last3 = rec.itl_s[1:]
    assert max(last3) - min(last3) < 1e-9 and min(last3) >= 0.03  # ~120 ms / 3 each, not 120, 0, 0
    assert rec.ttft_s + sum(rec.itl_s) == pytest.approx(rec.chunk_times[-1])
