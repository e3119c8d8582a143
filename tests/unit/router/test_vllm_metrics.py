"""Reading vLLM's queue gauges: both name generations, labels, sums across engines."""
import asyncio

import aiohttp
from fake_openai import FakeOpenAI, serving

from llmops_router.vllm_metrics import parse_queue_metrics

CURRENT = """# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny chat"} 3.0
vllm:num_requests_running{engine="0",model_name="tiny chat"} 5.0
vllm:kv_cache_usage_perc{engine="0",model_name="tiny chat"} 0.25
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 99.0
"""

DEPRECATED = """vllm:num_requests_waiting{model_name="m"} 7
vllm:num_requests_running{model_name="m"} 1
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
"""


def test_current_names():
    m = parse_queue_metrics(CURRENT)
    assert (m.waiting, m.running, m.kv_usage) == (3.0, 5.0, 0.25)


def test_deprecated_cache_name():
    m = parse_queue_metrics(DEPRECATED)
    assert (m.waiting, m.running, m.kv_usage) == (7.0, 1.0, 0.5)


def test_cpu_cache_name_and_percent_scale():
    m = parse_queue_metrics("vllm:num_requests_waiting 0\nvllm:cpu_cache_usage_perc 40\n")
    assert m.kv_usage == 0.4


def test_current_name_wins_over_deprecated():
    text = CURRENT + 'vllm:gpu_cache_usage_perc{engine="0"} 0.9\n'
    assert parse_queue_metrics(text).kv_usage == 0.25


def test_engines_are_summed():
    text = ('vllm:num_requests_waiting{engine="0"} 2\nvllm:num_requests_waiting{engine="1"} 4\n'
            'vllm:num_requests_running{engine="0"} 1\nvllm:num_requests_running{engine="1"} 1\n')
    m = parse_queue_metrics(text)
    assert (m.waiting, m.running) == (6.0, 2.0)


def test_no_vllm_metrics_is_none():
    assert parse_queue_metrics("process_cpu_seconds_total 3\n") is None
    assert parse_queue_metrics("") is None


def test_label_value_with_braces_and_spaces_and_timestamp():
    m = parse_queue_metrics('vllm:num_requests_waiting{model_name="a } b"} 4 1700000000000\n')
    assert m.waiting == 4.0


def test_malformed_gauge_line_is_no_metrics():
    assert parse_queue_metrics('vllm:num_requests_waiting{model_name="a} 4\n') is None


def test_what_prometheus_client_writes_for_both_generations():
    """The fake exports its gauges with prometheus_client, as vLLM does (HELP, TYPE, labels)."""
    async def scrape(fake):
        async with serving(fake) as url, aiohttp.ClientSession() as session:
            async with session.get(url + "/metrics") as resp:
                return await resp.text()
    fake = FakeOpenAI(models=["tiny chat"])
    fake.waiting, fake.running, fake.kv = 2, 3, 0.5
    current = parse_queue_metrics(asyncio.run(scrape(fake)))
    fake.deprecated_names, fake.kv = True, 0.75
    old = parse_queue_metrics(asyncio.run(scrape(fake)))
    assert (current.waiting, current.running, current.kv_usage) == (2.0, 3.0, 0.5)
    assert old.kv_usage == 0.75
