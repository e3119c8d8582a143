"""Engine math on hand-made timelines with answers worked out by hand."""
import math

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import (
    summarize,
    summarize_records,
    tpot_s,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.records import (
    RequestRecord,
    RunResult,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.stats import (
    describe,
    mean_ci,
    pct_key,
    percentile,
    t_quantile,
)


def ok_record(index, chunks, e2e, out_tokens, in_tokens=10):
    """A successful request whose content chunks arrived at `chunks` (s after send)."""
    return RequestRecord(index=index, ttft_s=chunks[0], chunk_times=list(chunks),
                         itl_s=[b - a for a, b in zip(chunks, chunks[1:])], e2e_s=e2e,
                         input_tokens=in_tokens, output_tokens=out_tokens, status=200,
                         end_s=e2e, reads=len(set(chunks)))


def failed_record(index, error_class="http_500"):
    rec = RequestRecord(index=index, status=500)
    rec.fail(error_class, "boom")
    return rec


def test_percentile_matches_hand_values():
    data = [4.0, 1.0, 3.0, 2.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 50) == 2.5
    assert percentile(data, 90) == pytest.approx(3.7)   # h = 3 * 0.9 = 2.7 -> 3 + 0.7
    assert percentile(data, 100) == 4.0
    assert percentile([7.0], 99.9) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(data, 101)


def test_percentile_matches_numpy_default():
    import numpy as np
    data = [0.3, 12.0, 5.5, 5.5, 1.25, 99.0, 42.0, 7.0, 8.0, 0.01, 3.3]
    for q in (0, 1, 10, 25, 50, 90, 95, 99, 99.9, 100):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))


def test_t_quantiles_match_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736, rel=1e-9)
    assert t_quantile(0.975, 4) == pytest.approx(2.776445105, rel=1e-9)
    assert t_quantile(0.975, 30) == pytest.approx(2.042272456, rel=1e-9)
    assert t_quantile(0.025, 10) == pytest.approx(-2.228138852, rel=1e-9)


def test_ci_on_small_sample():
    lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445105 -> half = 2.776445105*sqrt(2.5)/sqrt(5)
    half = 2.776445105 * math.sqrt(2.5) / math.sqrt(5)
    assert (lo, hi) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert mean_ci([1.0]) is None
    lo2, hi2 = mean_ci([5.0, 5.0, 5.0])
    assert lo2 == hi2 == 5.0


def test_describe_units_and_keys():
    d = describe([0.1, 0.2, 0.3], scale=1000.0)
    assert d["n"] == 3 and d["mean"] == pytest.approx(200.0) and d["median"] == pytest.approx(200.0)
    assert set(d) >= {"p90", "p95", "p99", "p999", "min", "max", "stdev", "ci95"}
    assert pct_key(99.9) == "p999" and pct_key(90) == "p90"
    empty = describe([])
    assert empty["n"] == 0 and empty["mean"] is None and empty["p999"] is None


def test_itl_excludes_ttft_and_tpot_rules():
    a = ok_record(0, [0.100, 0.150, 0.250], e2e=0.300, out_tokens=3)
    b = ok_record(1, [0.200], e2e=0.200, out_tokens=1)          # one token: no TPOT, no ITL
    c = failed_record(2)
    s = summarize_records([a, b, c], duration_s=2.0, planned=3)

    assert s["ttft_ms"]["n"] == 2 and s["ttft_ms"]["mean"] == pytest.approx(150.0)
    # pooled gaps are 50 and 100 ms; the 100 ms TTFT of `a` is not a gap
    assert s["itl_ms"]["n"] == 2
    assert s["itl_ms"]["min"] == pytest.approx(50.0) and s["itl_ms"]["max"] == pytest.approx(100.0)
    # vLLM TPOT: (e2e - ttft) / (out - 1) = (300 - 100) / 2 = 100 ms, only for `a`
    assert tpot_s(b) is None and tpot_s(a) == pytest.approx(0.1)
    assert s["tpot_ms"]["n"] == 1 and s["tpot_ms"]["mean"] == pytest.approx(100.0)
    assert s["e2e_ms"]["n"] == 2 and s["e2e_ms"]["max"] == pytest.approx(300.0)
    assert s["requests"] == {"planned": 3, "total": 3, "succeeded": 2, "failed": 1,
                             "not_sent": 0, "success_rate": pytest.approx(2 / 3),
                             "error_classes": {"http_500": 1}}
    assert s["tokens"] == {"input_total": 20, "output_total": 4, "usage_missing": 0}
    assert s["throughput"]["requests_per_s"] == pytest.approx(1.0)
    assert s["throughput"]["output_tokens_per_s"] == pytest.approx(2.0)
    assert s["throughput"]["total_tokens_per_s"] == pytest.approx(12.0)


def test_error_share_validity_threshold():
    good = [ok_record(i, [0.01, 0.02], 0.03, 2) for i in range(99)]
    assert summarize_records(good + [failed_record(99)], 1.0, 100)["valid"] is True  # 1.0%
    s = summarize_records(good[:98] + [failed_record(98), failed_record(99, "stream_cut")], 1.0, 100)
    assert s["valid"] is False
    assert "2.0% of requests failed" in s["invalid_reasons"][0]
    assert s["requests"]["error_classes"] == {"http_500": 1, "stream_cut": 1}


def test_nothing_succeeded_and_not_sent_are_invalid():
    s = summarize_records([failed_record(0, "connection_refused")], 0.0, 1)
    assert s["valid"] is False and "no request succeeded" in s["invalid_reasons"]
    assert s["throughput"]["requests_per_s"] is None
    s = summarize_records([ok_record(0, [0.01], 0.02, 1)], 1.0, 5, not_sent=4,
                          stopped_reason="run_timeout_s (1s) reached")
    assert s["valid"] is False and "4 of 5 requests were never sent" in s["invalid_reasons"][0]


def test_missing_usage_is_counted_not_guessed():
    rec = ok_record(0, [0.01, 0.02, 0.03], 0.04, None, in_tokens=None)
    s = summarize_records([rec], 1.0, 1)
    assert s["tokens"] == {"input_total": 0, "output_total": 0, "usage_missing": 1}
    assert s["tpot_ms"]["n"] == 0 and s["itl_ms"]["n"] == 2


def test_summarize_run_result():
    config = BenchConfig(base_url="http://127.0.0.1:9", model="m", num_requests=2)
    run = RunResult(config=config, records=[ok_record(0, [0.1, 0.2], 0.25, 2),
                                            ok_record(1, [0.1, 0.3], 0.35, 2)],
                    started_wall=0.0, ended_wall=1.0, duration_s=0.5)
    s = summarize(run)
    assert s["valid"] and s["throughput"]["requests_per_s"] == pytest.approx(4.0)
    assert s["ttft_ms"]["stdev"] == pytest.approx(0.0)


# ---- issue 4: goodput, schedule, server-side ---------------------------------------------
from ansible_collections.llmops.platform.plugins.module_utils.bench import servermetrics  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import (  # noqa: E402
    good,
    goodput,
    schedule_stats,
)


def test_goodput_edge_cases():
    fast = ok_record(0, [0.1, 0.2, 0.3], 0.3, 3)          # TTFT 100, TPOT 100, E2E 300 ms
    one_token = ok_record(1, [0.05], 0.06, 1)             # TPOT undefined
    slow = ok_record(2, [0.5, 0.6], 0.6, 2)               # TTFT 500 ms
    failed = failed_record(3)
    slos = {"ttft_ms": 200.0, "tpot_ms": 100.0}
    assert good(fast, slos) and good(one_token, slos)      # exactly at the limit passes
    assert not good(slow, slos) and not good(failed, slos)
    gp = goodput([fast, one_token, slow, failed], 2.0, slos, target=0.5)
    assert gp["good"] == 2 and gp["share"] == 0.5 and gp["requests_per_s"] == 1.0
    assert gp["meets_target"] is True
    assert goodput([fast], 1.0, {}) is None                # no SLO, no goodput
    empty = goodput([], 0.0, slos)
    assert empty["share"] == 0.0 and empty["requests_per_s"] is None
    assert not empty["meets_target"]


def test_schedule_stats_known_answer():
    recs = []
    for i, lag in enumerate([0.0, 0.001, 0.0, 0.003, 0.0]):
        r = ok_record(i, [0.1], 0.1, 1)
        r.scheduled_s, r.send_s, r.dispatch_lag_s = i * 0.1, i * 0.1 + lag, lag
        recs.append(r)
    s = schedule_stats(recs, 10.0, [50, 99])
    assert s["achieved_rate"] == pytest.approx(4 / 0.4)       # sends 0..0.4 s
    assert s["rate_error"] == pytest.approx(0.0)
    assert s["dispatch_lag_ms"]["max"] == pytest.approx(3.0)
    assert s["dispatch_lag_ms"]["mean"] == pytest.approx(0.8)


def test_queue_time_is_not_in_ttft_and_lag_invalidates():
    rec = ok_record(0, [0.1, 0.2], 0.2, 2)
    rec.queue_s, rec.dispatch_lag_s = 0.05, 0.02
    s = summarize_records([rec], 1.0, planned=1, max_lag_ms=10.0)
    assert s["ttft_ms"]["mean"] == pytest.approx(100.0) and s["queue_ms"]["mean"] == 50.0
    assert s["valid"] is False and "sender fell behind" in s["invalid_reasons"][0]
    assert summarize_records([rec], 1.0, planned=1, max_lag_ms=None)["valid"] is True


def test_percentile_set_is_configurable_but_keeps_p90_p99():
    recs = [ok_record(i, [0.01 * (i + 1)], 0.01 * (i + 1), 1) for i in range(10)]
    s = summarize_records(recs, 1.0, planned=10, percentiles=[50, 99.9])
    assert {"p50", "p90", "p99", "p999"} <= set(s["ttft_ms"])
    assert s["ttft_ms"]["p50"] == pytest.approx(55.0)


METRICS_BEFORE = """# HELP x
vllm:time_to_first_token_seconds_bucket{le="0.01",model_name="a"} 1
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="a"} 2
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="a"} 2
vllm:time_to_first_token_seconds_count{model_name="a"} 2
vllm:time_to_first_token_seconds_sum{model_name="a"} 0.06
vllm:generation_tokens_total{model_name="a"} 100
"""
METRICS_AFTER = """vllm:time_to_first_token_seconds_bucket{le="0.01",model_name="a"} 1
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="a"} 6
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="a"} 6
vllm:time_to_first_token_seconds_count{model_name="a"} 6
vllm:time_to_first_token_seconds_sum{model_name="a"} 0.26
vllm:generation_tokens_total{model_name="a"} 140
vllm:num_requests_running{model_name="a"} 3
"""


def test_server_histogram_deltas_known_answer():
    d = servermetrics.delta(servermetrics.parse(METRICS_BEFORE),
                            servermetrics.parse(METRICS_AFTER))
    assert d["ttft_ms"]["count"] == 4
    assert d["ttft_ms"]["mean"] == pytest.approx(50.0)        # (0.26 - 0.06) / 4 s
    assert d["ttft_ms"]["median"] == pytest.approx(55.0)      # 4 in (0.01, 0.1]: mid-bucket
    assert d["output_tokens"] == 40
    assert servermetrics.gauges(servermetrics.parse(METRICS_AFTER)) == {"num_requests_running": 3}
    client = {"ttft_ms": {"mean": 50.5}, "tokens": {"output_total": 40}}
    assert servermetrics.compare(client, d) == []
    # +10 ms over the server is the HTTP frontend's usual work: information, not a flag.
    assert servermetrics.compare({"ttft_ms": {"mean": 60.0}, "tokens": {"output_total": 40}}, d) == []
    gap = servermetrics.frontend_gap({"ttft_ms": {"mean": 60.0}}, d)[0]
    assert gap["gap_ms"] == pytest.approx(10.0) and gap["gap_share"] == pytest.approx(0.2) and gap["expected"]
    bad = servermetrics.compare({"ttft_ms": {"mean": 160.0}, "tokens": {"output_total": 39}}, d)
    assert len(bad) == 2 and "exceeds" in bad[0] and "39" in bad[1]
    assert not servermetrics.frontend_gap({"ttft_ms": {"mean": 160.0}}, d)[0]["expected"]
    assert "below server" in servermetrics.compare({"ttft_ms": {"mean": 40.0}}, d)[0]


def test_ci_half_width_for_two_samples():
    # n=2: t(0.975, 1) = 12.706; values 1, 3 -> mean 2, sd sqrt(2), half = 12.706 * 1
    lo, hi = mean_ci([1.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and (hi - lo) / 2 == pytest.approx(12.7062047, rel=1e-6)
    assert mean_ci([5.0]) is None


def test_server_metrics_read_both_vllm_name_generations():
    """vLLM < 0.7 named ITL time_per_output_token and the KV cache gpu_cache_usage_perc."""
    old = ("# TYPE vllm:time_per_output_token_seconds histogram\n"
           'vllm:time_per_output_token_seconds_bucket{le="0.01",model_name="a"} 1\n'
           'vllm:time_per_output_token_seconds_bucket{le="+Inf",model_name="a"} 3\n'
           'vllm:time_per_output_token_seconds_count{model_name="a"} 3\n'
           'vllm:time_per_output_token_seconds_sum{model_name="a"} 0.06\n'
           'vllm:gpu_cache_usage_perc{model_name="a"} 0.5\n'
           'vllm:time_per_output_token_seconds_total_nonsense{model_name="a"} 9\n')
    parsed = servermetrics.parse(old)
    assert servermetrics.delta({}, parsed)["itl_ms"]["mean"] == pytest.approx(20.0)
    assert servermetrics.gauges(parsed) == {"gpu_cache_usage_perc": 0.5}
    assert servermetrics.parse('vllm:num_requests_running{model_name="a} 3\n') == {}  # malformed: no server view
