import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.records import RequestRecord
from ansible_collections.llmops.platform.plugins.module_utils.tune.objectives import (
    better,
    good_request,
    point_metrics,
    request_values_ms,
    score,
)


def point(**kw):
    base = {"valid": True, "invalid_reasons": [], "e2e_ms": 200.0, "ttft_ms": 50.0, "tpot_ms": 5.0,
            "requests_per_s": 10.0, "output_tokens_per_s": 320.0, "goodput_rps": 8.0,
            "e2e_ms_slo_pct": 300.0, "ttft_ms_slo_pct": 80.0, "tpot_ms_slo_pct": 6.0}
    base.update(kw)
    return base


def test_mean_over_points():
    s = score([point(e2e_ms=100.0), point(e2e_ms=300.0)], "e2e_ms", "minimize", {})
    assert s["value"] == pytest.approx(200.0) and s["feasible"]


def test_throughput_per_gpu():
    s = score([point()], "output_tokens_per_s", "maximize", {}, gpus_per_server=2)
    assert s["value"] == pytest.approx(160.0)


def test_slo_penalty_hand_computed():
    slo = {"ttft_ms": 40.0, "mode": "penalty", "percentile": 90.0, "penalty_weight": 1.0}
    # p90 TTFT 80 vs 40: excess 1.0 -> factor 2: latency doubles, throughput halves
    assert score([point()], "e2e_ms", "minimize", slo)["value"] == pytest.approx(400.0)
    assert score([point()], "output_tokens_per_s", "maximize", slo)["value"] == pytest.approx(160.0)


def test_slo_hard_makes_trial_infeasible():
    slo = {"ttft_ms": 40.0, "mode": "hard", "percentile": 90.0, "penalty_weight": 1.0}
    s = score([point()], "e2e_ms", "minimize", slo)
    assert not s["feasible"] and s["value"] is None and "SLO violated" in s["reason"]


def test_invalid_benchmark_is_infeasible():
    s = score([point(valid=False, invalid_reasons=["50% failed"])], "e2e_ms", "minimize", {})
    assert not s["feasible"] and "50% failed" in s["reason"]


def rec(ttft, e2e, tokens):
    r = RequestRecord(index=0, ttft_s=ttft, e2e_s=e2e, output_tokens=tokens)
    return r


def test_goodput_counts_only_requests_meeting_every_slo():
    records = [rec(0.05, 0.5, 11), rec(0.2, 0.5, 11), rec(0.05, 2.0, 11), rec(0.05, 0.3, 1)]
    # tpot: (0.5-0.05)/10 = 45 ms; (2.0-0.05)/10 = 195 ms
    assert request_values_ms(records[0])["tpot_ms"] == pytest.approx(45.0)
    slo = {"ttft_ms": 100.0, "tpot_ms": 100.0, "percentile": 50.0}
    assert [good_request(request_values_ms(r), slo) for r in records] == [True, False, False, True]
    summary = {"valid": True, "duration_s": 2.0, "requests": {"total": 4, "failed": 0},
               "throughput": {"requests_per_s": 2.0, "output_tokens_per_s": 17.0}}
    pm = point_metrics(records, summary, slo)
    assert pm["goodput_rps"] == pytest.approx(1.0) and pm["good_share"] == pytest.approx(0.5)


def test_better():
    assert better(1.0, 2.0, "minimize") and better(2.0, 1.0, "maximize")
    assert better(1.0, None, "minimize") and not better(None, 1.0, "maximize")
