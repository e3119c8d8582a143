"""Every load profile end to end against the fixture server (small, bounded runs)."""
import asyncio
import json
import statistics

import pytest
from fake_openai import FakeOpenAI, start  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench import client  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (  # noqa: E402
    BenchConfig,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import Engine  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.results import (  # noqa: E402
    build_engine_results,
)


def run_engine(mode="ok", server=None, **overrides):
    server = server or FakeOpenAI(ttft=0.01, itl=0.002)

    async def go():
        runner, port = await start(server)
        try:
            options = dict(base_url=f"http://127.0.0.1:{port}/{mode}", model="fixture",
                           num_requests=20, concurrency=4, max_tokens=4, prompt_tokens=8,
                           request_timeout_s=5.0, run_timeout_s=30.0)
            options.update(overrides)
            engine = Engine(BenchConfig(**options))
            await engine.run()
            return engine
        finally:
            await runner.cleanup()

    engine = asyncio.run(go())
    return engine, build_engine_results(engine), server


def test_constant_rate_is_anchored_to_deadlines():
    # The lag limit is loose here: unit tests share 2 cores with everything else;
    # bench/schedule_fidelity.py measures the real figure on a quiet machine.
    engine, results, server = run_engine(profile="constant", rate=100.0, num_requests=40,
                                         max_dispatch_lag_ms=150.0)
    summary = results["summary"]
    assert summary["valid"], summary["invalid_reasons"]
    recs = results["records"]
    gaps = [b["scheduled_s"] - a["scheduled_s"] for a, b in zip(recs, recs[1:])]
    assert all(g == pytest.approx(0.01, abs=1e-9) for g in gaps)  # absolute schedule
    # Sends follow the absolute schedule; the achieved rate can only drift from the target by
    # the lag of the first and last sends (each bounded by the run's lag limit).
    sends = sorted(r["send_s"] for r in recs)
    worst_lag = max(abs(r["send_s"] - r["scheduled_s"]) for r in recs)
    span = recs[-1]["scheduled_s"] - recs[0]["scheduled_s"]
    achieved = summary["schedule"]["achieved_rate"]
    assert achieved == pytest.approx((len(sends) - 1) / (sends[-1] - sends[0]))
    assert (len(recs) - 1) / (span + 2 * worst_lag) <= achieved <= (len(recs) - 1) / (span - 2 * worst_lag)
    assert summary["schedule"]["dispatch_lag_ms"]["p99"] < 150.0
    assert all(r["dispatch_lag_s"] >= 0 and r["queue_s"] is not None for r in recs)
    arrivals = server.arrivals
    # The server sees the same schedule, shifted by at most the worst send lag at either end.
    assert statistics.fmean(b - a for a, b in zip(arrivals, arrivals[1:])) == pytest.approx(
        0.01, abs=0.001 + 2 * worst_lag / (len(recs) - 1))


def test_poisson_gamma_rate_and_burstiness():
    _, results, _ = run_engine(profile="poisson", rate=200.0, burstiness=0.5, num_requests=60)
    sched = [r["scheduled_s"] for r in results["records"]]
    gaps = [b - a for a, b in zip(sched, sched[1:])]
    assert len(set(round(g, 6) for g in gaps)) > 30  # not a constant schedule
    assert results["summary"]["step"]["profile"] == "poisson"


def test_throughput_profile_caps_in_flight():
    server = FakeOpenAI(ttft=0.05, itl=0.0)
    _, results, _ = run_engine(server=server, profile="throughput", num_requests=30,
                               max_concurrency=10, max_tokens=1)
    assert server.max_inflight == 10
    assert results["summary"]["requests"]["succeeded"] == 30
    assert results["summary"]["valid"]  # lag is not a fault when everything is due at once


def test_sweep_runs_sync_max_and_rates_between():
    _, results, _ = run_engine(profile="sweep", sweep_steps=2, num_requests=12)
    steps = results["summary"]["steps"]
    assert [s["profile"] for s in steps] == ["concurrency", "throughput", "constant", "constant"]
    lo, hi = steps[0]["requests_per_s"], steps[1]["requests_per_s"]
    assert lo < steps[2]["rate"] < steps[3]["rate"] < hi
    assert steps[2]["rate"] == pytest.approx(lo + (hi - lo) / 3)
    assert len(results["records"]) == 48 and {r["step"] for r in results["records"]} == {0, 1, 2, 3}


def test_slo_search_finds_a_passing_rate():
    _, results, _ = run_engine(profile="slo_search", sweep_steps=2, num_requests=10,
                               slo_e2e_ms=5000.0, slo_target=0.9,
                               max_dispatch_lag_ms=150.0)  # the search logic, not sender timing
    best = results["summary"]["slo_search"]["best_rate"]
    assert best is not None and best > 0


def test_trace_replay(tmp_path):
    trace = tmp_path / "trace.jsonl"
    rows = [{"timestamp": 100.0 + 0.02 * i, "input_length": 5 + i, "output_length": 1 + i % 3}
            for i in range(8)]
    trace.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _, results, server = run_engine(profile="trace", trace_path=str(trace), trace_speed=2.0)
    recs = results["records"]
    assert len(recs) == 8
    assert recs[-1]["scheduled_s"] - recs[0]["scheduled_s"] == pytest.approx(0.07, abs=1e-9)
    # Requests in flight together may reach the server in any order; each one's own
    # max_tokens is checked on the records below.
    assert sorted(b["max_tokens"] for b in server.bodies) == sorted(1 + i % 3 for i in range(8))
    assert [r["output_tokens"] for r in recs] == [1 + i % 3 for i in range(8)]


def test_repeats_pool_percentiles_and_report_spread():
    _, results, _ = run_engine(num_requests=6, repeats=3)
    summary = results["summary"]
    assert summary["requests"]["total"] == 18 and summary["repeats"]["count"] == 3
    assert summary["repeats"]["requests_per_s"]["n"] == 3
    assert {r["repeat"] for r in results["records"]} == {0, 1, 2}


def test_server_metrics_agree_with_client():
    _, results, server = run_engine(num_requests=10, warmup_requests=3)
    summary = results["summary"]
    assert summary["server_metrics_available"]
    srv = summary["server"]
    assert srv["output_tokens"] == 40 == summary["tokens"]["output_total"]  # warm-up excluded
    assert srv["ttft_ms"]["count"] == 10
    assert summary["ttft_ms"]["mean"] >= srv["ttft_ms"]["mean"] - 1.0
    assert not any("output tokens" in d for d in summary["server_disagreements"])


def test_goodput_and_failures_in_open_loop():
    _, results, _ = run_engine("flaky", profile="constant", rate=100.0, num_requests=9,
                               slo_ttft_ms=10000.0)
    summary = results["summary"]
    assert summary["valid"] is False
    assert summary["requests"]["error_classes"] == {"http_500": 3}
    assert summary["goodput"]["good"] == 6 and summary["goodput"]["share"] == pytest.approx(6 / 9)


def test_sender_behind_schedule_marks_invalid(monkeypatch):
    # A cap of 1 in flight at 200/s against 50 ms responses: the sender must wait, so sends
    # fall behind their deadlines and the run says so.
    server = FakeOpenAI(ttft=0.05, itl=0.0)
    _, results, _ = run_engine(server=server, profile="constant", rate=200.0, num_requests=8,
                               max_concurrency=1, max_tokens=1, saturation_guard=False)
    reasons = results["summary"]["invalid_reasons"]
    assert any("sender fell behind schedule" in r for r in reasons)


def test_saturation_guard_stops_growing_queue(monkeypatch):
    monkeypatch.setattr(client, "SAT_WINDOW_S", 0.05)
    monkeypatch.setattr(client, "SAT_WINDOWS", 3)
    monkeypatch.setattr(client, "SAT_MIN", 4)
    server = FakeOpenAI(ttft=2.0, itl=0.0)  # never finishes within the test window
    _, results, _ = run_engine(server=server, profile="constant", rate=200.0, num_requests=200,
                               max_tokens=1, request_timeout_s=3.0)
    summary = results["summary"]
    assert summary["valid"] is False
    assert any("saturated" in r for r in summary["invalid_reasons"])
    assert summary["requests"]["not_sent"] > 100


def test_a_list_of_concurrencies_is_one_step_each_with_a_minimum_duration():
    engine, results, _ = run_engine(concurrency=[1, 4, 8], num_requests=4, min_step_s=0.4,
                                    server=FakeOpenAI(ttft=0.005, itl=0.001))
    steps = results["summary"]["steps"]
    assert [s["concurrency"] for s in steps] == [1, 4, 8]
    assert [s["label"] for s in steps] == ["concurrency 1", "concurrency 4", "concurrency 8"]
    for step in engine.steps:
        recs = step.repeats[0].records
        assert len(recs) > 4  # the step kept sending (prompts cycle) until min_step_s
        # Sending goes on until 0.4 s after the phase began, so the last request to end (not
        # the last sent) ends after that; the first send may lag the phase start a little.
        assert max(r.end_s for r in recs) - min(r.send_s for r in recs) >= 0.4 - 0.02
        assert len({r.index for r in recs}) == len(recs)
    assert results["summary"]["valid"], results["summary"]["invalid_reasons"]


def test_a_list_of_rates_is_one_step_each():
    _, results, _ = run_engine(profile="constant", rate=[20.0, 40.0], num_requests=6,
                               max_dispatch_lag_ms=200.0)
    assert [s["rate"] for s in results["summary"]["steps"]] == [20.0, 40.0]


def test_max_seconds_bounds_each_step_and_keeps_the_run_valid():
    _, results, _ = run_engine(concurrency=2, num_requests=500, max_seconds=0.3,
                               server=FakeOpenAI(ttft=0.01, itl=0.002))
    summary = results["summary"]
    assert summary["requests"]["total"] < 500 and summary["requests"]["not_sent"] == 0
    assert summary["valid"], summary["invalid_reasons"]


def test_headers_and_label_travel_with_every_request_and_result():
    _, results, server = run_engine(num_requests=2, headers={"X-Tenant": "team-a"}, label="night run")
    assert server.last_headers.get("X-Tenant") == "team-a"
    assert results["config"]["headers"] == {"X-Tenant": "<redacted>"}
    assert results["config"]["label"] == "night run"


def test_a_server_that_vanishes_mid_run_stops_it_with_that_reason():
    server = FakeOpenAI(ttft=0.01, itl=0.01)

    async def go():
        runner, port = await start(server)
        engine = Engine(BenchConfig(base_url=f"http://127.0.0.1:{port}", model="fixture",
                                    concurrency=[2, 4], num_requests=2000, max_tokens=8,
                                    prompt_tokens=8, request_timeout_s=5.0, run_timeout_s=30.0))
        task = asyncio.ensure_future(engine.run())
        await asyncio.sleep(0.5)
        await runner.cleanup()  # the server goes away with streams in flight
        await task
        return engine

    engine = asyncio.run(go())
    results = build_engine_results(engine)
    assert len(engine.steps) == 1  # no second step against a dead server
    assert results["summary"]["notes"][0].startswith("server vanished")
    classes = results["summary"]["requests"]["error_classes"]
    assert "connection_refused" in classes and "client_error" not in classes
    assert results["summary"]["requests"]["total"] < 2000


def test_quiet_gc_restores_the_collector():
    import gc

    from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import QuietGC

    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with QuietGC():
        assert gc.get_threshold() == QuietGC.THRESHOLDS and gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before and gc.isenabled()
