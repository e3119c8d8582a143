"""The fake OpenAI server itself: the knobs other tests rely on do what they say."""
import asyncio
import json
import time
import urllib.request

import aiohttp
from fake_openai import FakeOpenAI, running, serving
from prometheus_client.parser import text_string_to_metric_families


def _samples(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if not s.name.endswith("_bucket")}


def test_batching_queues_beyond_the_slots_and_metrics_show_it():
    async def scenario():
        fake = FakeOpenAI(ttft=0.3, itl=0.0, tokens=1, slots=2)
        async with serving(fake) as url, aiohttp.ClientSession() as session:
            body = {"model": "fixture", "prompt": "a b c", "stream": True}

            async def one():
                async with session.post(url + "/v1/completions", json=body) as resp:
                    return await resp.read()
            tasks = [asyncio.create_task(one()) for _ in range(5)]
            await asyncio.sleep(0.15)
            async with session.get(url + "/metrics") as resp:
                during = _samples(await resp.text())
            answers = await asyncio.gather(*tasks)
            async with session.get(url + "/metrics") as resp:
                after = _samples(await resp.text())
            return during, answers, after, fake.max_inflight
    during, answers, after, peak = asyncio.run(scenario())
    assert during["vllm:num_requests_running"] == 2 and during["vllm:num_requests_waiting"] == 3
    assert peak == 5 and all(a.endswith(b"data: [DONE]\n\n") for a in answers)
    assert after["vllm:generation_tokens_total"] == 5 and after["vllm:e2e_request_latency_seconds_count"] == 5
    # The last two waited a whole round for a slot: the server's own TTFT sum shows it.
    assert after["vllm:time_to_first_token_seconds_sum"] > 5 * 0.3 + 0.5


def test_failure_modes_by_path_and_runtime_config():
    async def scenario():
        fake = FakeOpenAI(ttft=0.0, itl=0.0, tokens=4)
        async with serving(fake) as url, aiohttp.ClientSession() as session:
            body = {"model": "fixture", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            async with session.post(url + "/fail429/v1/chat/completions", json=body) as resp:
                failed = resp.status, (await resp.json())["error"]["message"]
            async with session.post(url + "/nodone/v1/chat/completions", json=body) as resp:
                nodone = await resp.read()
            async with session.post(url + "/fixture/config", json={"mode": "fail503", "tokens": 2}) as resp:
                config = await resp.json()
            async with session.post(url + "/v1/chat/completions", json=body) as resp:
                switched = resp.status
            async with session.post(url + "/fixture/config", json={"nonsense": 1}) as resp:
                refused = resp.status
            return failed, nodone, config, switched, refused
    failed, nodone, config, switched, refused = asyncio.run(scenario())
    assert failed == (429, "fake error 429")
    tokens = [json.loads(line[6:]) for line in nodone.split(b"\n\n") if line.startswith(b"data: {")]
    assert [c["choices"][0]["delta"].get("content") for c in tokens] == ["", "t0 ", "t1 ", "t2 ", "t3 "]
    assert b"[DONE]" not in nodone
    assert config["mode"] == "fail503" and config["tokens"] == 2 and switched == 503
    assert refused == 400


REQUEST = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s")


def test_with_kernel_arrival_a_busy_fixtures_queueing_is_its_own_time():
    """The request lands while the fixture's loop is blocked: its TTFT from the kernel's stamp
    includes the block, the one from its loop's clock does not."""
    async def scenario():
        fake = FakeOpenAI(ttft=0.01, itl=0.0, tokens=1)
        async with serving(fake, kernel_arrival=True) as url:
            port = int(url.rsplit(":", 1)[1])
            body = json.dumps({"model": "fixture", "prompt": "a", "stream": True}).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.02)  # the fixture accepts: its connection now stamps arrivals
            writer.write(REQUEST % (len(body), body))
            await writer.drain()
            time.sleep(0.15)  # the fixture's loop (this loop) is busy when the bytes land
            answer = b""
            while b"[DONE]" not in answer:
                answer += await reader.read(65536)
            writer.close()
            return fake.ttfts, fake.ttfts_loop
    ttfts, loop_clock = asyncio.run(scenario())
    assert len(ttfts) == len(loop_clock) == 1
    assert ttfts[0] >= 0.15 + 0.01 and loop_clock[0] < 0.1, (ttfts, loop_clock)


def test_the_fixture_process_stamps_arrival_and_reports_both_clocks():
    for extra in ([], ["--kernel-arrival"]):
        with running(["--ttft-ms", "5", "--itl-ms", "0", *extra]) as url:
            body = json.dumps({"model": "fixture", "prompt": "a", "max_tokens": 2, "stream": True}).encode()
            request = urllib.request.Request(url + "/v1/completions", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert b"[DONE]" in resp.read()
            with urllib.request.urlopen(url + "/fixture/stats?reset=1", timeout=10) as resp:
                stats = json.load(resp)
        assert len(stats["ttft_ms"]) == len(stats["ttft_loop_ms"]) == 1
        assert stats["ttft_ms"][0] >= stats["ttft_loop_ms"][0] >= 5.0
