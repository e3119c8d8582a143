"""Reading vLLM's queue gauges: both name generations, labels, sums across engines."""
import asyncio

import aiohttp
from fake_openai import FakeOpenAI, serving

from llmops_router.vllm_metrics import parse_prefix_cache, parse_queue_metrics

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


PREFIX_V1 = """# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_queries_created{engine="0",model_name="m"} 1.7e9
vllm:prefix_cache_queries_total{engine="1",model_name="m"} 600.0
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 700.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 100.0
vllm:external_prefix_cache_hits_total{engine="0",model_name="m"} 5.0
"""


def test_prefix_cache_counters_current_generation():
    m = parse_prefix_cache(PREFIX_V1)
    assert (m.queries, m.hits, m.hit_rate) == (1600.0, 800.0, 0.5)


def test_prefix_cache_counters_earlier_v1_names_and_current_wins():
    old = 'vllm:gpu_prefix_cache_queries_total{model_name="m"} 40\nvllm:gpu_prefix_cache_hits_total{model_name="m"} 10\n'
    m = parse_prefix_cache(old)
    assert (m.queries, m.hits, m.hit_rate) == (40.0, 10.0, 0.25)
    assert parse_prefix_cache(old + PREFIX_V1).queries == 1600.0


def test_prefix_cache_v0_hit_rate_gauge():
    m = parse_prefix_cache('# TYPE vllm:gpu_prefix_cache_hit_rate gauge\nvllm:gpu_prefix_cache_hit_rate{model_name="m"} 0.42\n')
    assert (m.queries, m.hits, m.hit_rate) == (None, None, 0.42)


def test_prefix_cache_absent_or_no_queries():
    assert parse_prefix_cache(CURRENT) is None
    assert parse_prefix_cache("vllm:prefix_cache_queries_total 0\n").hit_rate is None


def test_prefix_cache_names_are_in_the_monitoring_catalog():
    import os

    import yaml

    from llmops_router import vllm_metrics

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    with open(os.path.join(root, "roles", "monitoring", "files", "metric_names.yml"), encoding="utf-8") as handle:
        catalog = yaml.safe_load(handle)
    current = set(catalog["vllm"]["counters"])
    deprecated = set(catalog["vllm_deprecated"])
    assert {vllm_metrics.PREFIX_QUERIES[0], vllm_metrics.PREFIX_HITS[0]} <= current
    assert {vllm_metrics.PREFIX_QUERIES[1], vllm_metrics.PREFIX_HITS[1], vllm_metrics.PREFIX_HIT_RATE} <= deprecated
