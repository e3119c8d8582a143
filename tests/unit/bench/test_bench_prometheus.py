"""Server series from Prometheus in benchmark results and reports.

The fixture Prometheus records the queries it gets, so the tests check both what is asked
and what is drawn.
"""
import pytest
from fake_prometheus import PODS, FakePrometheus
from test_bench_engine import run_engine

from ansible_collections.llmops.platform.plugins.module_utils.bench import promseries, report
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig, BenchConfigError


@pytest.fixture
def prom():
    fake = FakePrometheus(window=True)
    yield fake
    fake.close()


def test_queries_select_the_model_per_replica_and_both_kv_names():
    q = promseries.queries('chat"x')
    assert q["running"] == 'sum by (pod, instance) (vllm:num_requests_running{model_name="chat\\"x"})'
    assert "vllm:kv_cache_usage_perc{" in q["kv_cache"] and "vllm:gpu_cache_usage_perc{" in q["kv_cache"]


def test_collect_gives_every_replica_on_the_run_axis(prom):
    out = promseries.collect(prom.url, "chat", start=1000.0, end=1030.0)
    assert out["error"] is None and out["fresh"] is True and out["step_s"] == 1.0
    assert promseries.replicas(out) == list(PODS)
    running = {row["name"]: row["points"] for row in out["series"]["running"]}
    assert running["vllm-chat-0"][0] == [0.0, 1.0] and running["vllm-chat-1"][-1] == [30.0, 2.0]
    assert sum(q["query"].startswith("timestamp(") for q in prom.queries) == 1
    assert len(prom.queries) == 4  # freshness, running, waiting, KV cache


def test_long_runs_are_queried_coarser(prom):
    out = promseries.collect(prom.url, "chat", start=0.0, end=3000.0)
    assert out["step_s"] == 10.0 and len(out["series"]["waiting"][0]["points"]) == 301


def test_stale_series_are_waited_for_then_said(prom):
    prom.newest = 5.0  # no scrape after the run's end yet
    out = promseries.collect(prom.url, "chat", start=0.0, end=10.0, wait_s=0.6)
    assert out["fresh"] is False and out["error"] is None
    assert sum(q["query"].startswith("timestamp(") for q in prom.queries) >= 2  # it polled


def test_a_prometheus_that_does_not_answer_is_recorded_not_raised():
    out = promseries.collect("http://127.0.0.1:9", "chat", start=0.0, end=1.0, wait_s=0.1)
    assert "does not answer" in out["error"] and out["series"] == {}


def test_prometheus_url_is_checked_naming_the_field():
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(base_url="http://127.0.0.1:8000", model="m", prometheus_url="127.0.0.1:9090")
    assert err.value.field == "prometheus_url" and "http://" in err.value.message
    assert BenchConfig(base_url="http://h:1", model="m", prometheus_url="http://p:9090/").prometheus_url == "http://p:9090"


def _results(prometheus):
    records = [{"send_s": i * 0.5, "queue_s": 0.0, "ttft_s": 0.1 + i * 0.01} for i in range(40)]
    return {"config": {"model": "chat"}, "records": records, "prometheus": prometheus,
            "summary": {"duration_s": 20.0, "server": {"output_tokens": 10}},
            "series": [{"step": 0, "samples": [{"t_s": t, "num_requests_running": 1.0,
                                                 "num_requests_waiting": 0.0} for t in range(10)]}]}


def test_report_draws_every_replica_next_to_the_own_samples(prom):
    html = "".join(report.prometheus_section(_results(promseries.collect(prom.url, "chat", 0.0, 20.0))))
    assert "Server series from Prometheus (every replica)" in html
    assert "replicas: vllm-chat-0, vllm-chat-1" in html
    for title in ("Requests running per replica", "Requests waiting per replica", "KV cache use per replica",
                  "Client TTFT over the run"):
        assert title in html
    assert html.count("<svg") == 4
    full = "".join(report._server_section(_results(promseries.collect(prom.url, "chat", 0.0, 20.0))))
    # The engine's own samples stay beside them (finer: they catch spikes between scrapes).
    assert full.index("Server series from Prometheus") < full.index("<h2>Server gauges</h2>")


def test_report_falls_back_and_says_why():
    down = promseries.collect("http://127.0.0.1:9", "chat", 0.0, 1.0, wait_s=0.1)
    html = "".join(report._server_section(_results(down)))
    assert "Prometheus at http://127.0.0.1:9 did not answer" in html and "<h2>Server gauges</h2>" in html
    empty = {"url": "http://p:9090", "series": {"running": []}, "error": None}
    html = "".join(report._server_section(_results(empty)))
    assert 'no vLLM series with model_name=&quot;chat&quot;' in html and "<h2>Server gauges</h2>" in html
    assert report.prometheus_section(_results(None)) == []


def test_binned_ttft_is_the_median_per_interval():
    records = [{"send_s": 0.0, "ttft_s": t} for t in (0.1, 0.3, 0.2)] + [{"send_s": 1.0, "ttft_s": 0.5}]
    assert report._binned_ttft(records, 1.0) == [(0.5, 200.0), (1.5, 500.0)]


def test_engine_run_records_the_prometheus_window(prom):
    _engine, results, _server = run_engine(num_requests=8, prometheus_url=prom.url)
    got = results["prometheus"]
    assert got["url"] == prom.url and got["error"] is None and got["end"] > got["start"]
    assert promseries.replicas(got) == list(PODS)
    assert any('model_name="fixture"' in q["query"] for q in prom.queries)
    _engine, results, _server = run_engine(num_requests=4)
    assert results["prometheus"] is None


def test_a_run_shorter_than_two_points_says_so_and_keeps_the_own_samples(prom):
    short = promseries.collect(prom.url, "chat", 0.0, 0.5)  # one point per replica at 1 s steps
    html = "".join(report._server_section(_results(short)))
    assert "fits in one of its points" in html and "<h2>Server gauges</h2>" in html
    assert "a single point" not in html


def test_client_ttft_in_one_interval_draws_no_lone_dot(prom):
    results = _results(promseries.collect(prom.url, "chat", 0.0, 20.0))
    results["records"] = [{"send_s": 0.1, "queue_s": 0.0, "ttft_s": 0.2}]
    html = "".join(report.prometheus_section(results))
    assert "Client TTFT over the run" not in html and "a single point" not in html and html.count("<svg") == 3
