"""Report honesty rules: bucket bounds, the frontend gap, coalesced streams, gauges, links."""
import re

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench import servermetrics
from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import summarize_records
from ansible_collections.llmops.platform.plugins.module_utils.bench.records import RequestRecord
from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (
    gauge_section,
    index_href,
    render_run_report,
)

E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0)


def exposition(counts_by_le, total_sum):
    """A vLLM-shaped E2E histogram with cumulative `counts_by_le` ({le: count})."""
    lines = ["# TYPE vllm:e2e_request_latency_seconds histogram"]
    for le in E2E_BUCKETS + (float("inf"),):
        name = "+Inf" if le == float("inf") else f"{le:g}"
        lines.append(f'vllm:e2e_request_latency_seconds_bucket{{le="{name}",model_name="m"}} '
                     f"{counts_by_le.get(le, max(counts_by_le.values()))}")
    total = max(counts_by_le.values())
    lines += [f'vllm:e2e_request_latency_seconds_count{{model_name="m"}} {total}',
              f'vllm:e2e_request_latency_seconds_sum{{model_name="m"}} {total_sum}']
    return servermetrics.parse("\n".join(lines) + "\n")


def test_quantile_in_the_first_bucket_is_an_upper_bound():
    # 10 requests all under 300 ms: interpolation would say p50 = 150 ms, which nobody measured.
    d = servermetrics.delta({}, exposition({0.3: 10}, 0.9))
    e2e = d["e2e_ms"]
    assert e2e["median"] == pytest.approx(300.0) and e2e["bounds"]["median"] == "<="
    assert e2e["p99"] == pytest.approx(300.0) and e2e["bounds"]["p99"] == "<="
    assert e2e["mean"] == pytest.approx(90.0)  # the mean comes from _sum: exact


def test_quantile_inside_a_middle_bucket_is_interpolated_and_in_inf_is_a_floor():
    d = servermetrics.delta({}, exposition({0.3: 0, 0.5: 10, 0.8: 10, 1.0: 10}, 4.0))
    assert d["e2e_ms"]["median"] == pytest.approx(400.0) and "median" not in d["e2e_ms"]["bounds"]
    slow = servermetrics.delta({}, exposition({0.3: 0, 0.5: 0, 0.8: 0, 1.0: 1, float("inf"): 10}, 30))
    assert slow["e2e_ms"]["bounds"]["p99"] == ">=" and slow["e2e_ms"]["p99"] == pytest.approx(1000.0)


def run_results(summary_extra=None, records=None, series=None, config_extra=None):
    recs = records or [ok(0, [0.01, 0.02, 0.03])]
    summary = summarize_records(recs, 1.0, len(recs))
    summary.update({"steps": [], "headline_step": 0, "notes": []})
    summary.update(summary_extra or {})
    return {"schema_version": "1", "config": {"model": "m", "url": "http://x/v1/chat/completions",
                                              "concurrency": 8, **(config_extra or {})},
            "summary": summary, "records": [r.to_dict() for r in recs], "series": series or [],
            "versions": {}}


def ok(index, chunks, reads=None):
    return RequestRecord(index=index, ttft_s=chunks[0], chunk_times=list(chunks),
                         itl_s=[b - a for a, b in zip(chunks, chunks[1:])], e2e_s=chunks[-1] + 0.001,
                         output_tokens=len(chunks), input_tokens=4, status=200, end_s=chunks[-1],
                         reads=len(set(chunks)) if reads is None else reads)


def test_report_shows_server_bounds_and_frontend_gap_as_information():
    server = servermetrics.delta({}, exposition({0.3: 1}, 0.012))  # one request, 12 ms at the server
    results = run_results()
    client = results["summary"]
    client["server"] = server
    client["server_disagreements"] = servermetrics.compare(client, server)
    client["server_gap"] = servermetrics.frontend_gap(client, server)
    page = render_run_report(results)
    assert "&lt;= 300.00" in page  # the p50 of a first-bucket histogram is a bound
    assert "Frontend gap (expected)" in page and "Client and server disagree" not in page
    client["server_disagreements"] = ["e2e_ms: client mean 900 ms exceeds server 12 ms"]
    assert "Client and server disagree" in render_run_report(results)


def test_coalesced_streams_have_no_itl_and_say_so():
    # 32 chunks in 1 read (a buffering proxy): 31 gaps of 0 ms that were never measured.
    coalesced = ok(0, [0.05] * 32, reads=1)
    fine = ok(1, [0.01 * k for k in range(1, 9)])
    assert coalesced.coalesced and not fine.coalesced
    s = summarize_records([coalesced, fine], 1.0, 2)
    assert s["itl_ms"]["n"] == 7 and s["itl_ms"]["min"] > 0  # only the measured stream's gaps
    assert s["streams"]["coalesced"] == 1 and s["streams"]["coalesced_share"] == pytest.approx(0.5)
    assert "ITL unavailable for 1 of 2 requests" in s["streams"]["itl_unavailable"]
    only = summarize_records([coalesced], 1.0, 1)
    assert only["itl_ms"]["n"] == 0 and only["itl_ms"]["median"] is None  # not 0 ms
    assert only["tpot_ms"]["n"] == 1  # first token to last is still measured
    page = render_run_report(run_results(records=[coalesced]))
    assert "ITL unavailable for 1 of 1 requests" in page and ">n/a<" in page


def test_compare_keeps_unmeasured_itl_out_of_verdicts():
    from ansible_collections.llmops.platform.plugins.module_utils.compare import compare

    def summary(rps, coalesced):
        recs = [ok(i, [0.05] * 16, reads=1) if coalesced else ok(i, [0.01 * k for k in range(1, 17)])
                for i in range(4)]
        s = summarize_records(recs, 4.0 / rps, 4)
        return s

    runs = {"baseline": {"m": [summary(1.0, False), summary(1.02, False)]},
            "managed": {"m": [summary(1.0, True), summary(1.01, True)]}}
    rows = compare(runs, "baseline", "managed")["models"]["m"]["metrics"]
    assert not [r for r in rows if r["metric"].startswith("itl_ms")]


def test_gauges_too_short_is_a_sentence_and_counts_get_whole_ticks():
    short = run_results(series=[{"step": 0, "samples": [{"t_s": 0.1, "num_requests_running": 3}]}],
                        summary_extra={"server": {"e2e_ms": {}}})
    text = "".join(gauge_section(short))
    assert "Run too short to sample" in text and "<svg" not in text
    samples = [{"t_s": 0.2 * i, "num_requests_running": float(i % 3), "num_requests_waiting": 0.0,
                "kv_cache_usage_perc": 0.1 * (i % 3)} for i in range(10)]
    text = "".join(gauge_section(run_results(series=[{"step": 0, "samples": samples}])))
    requests_chart, kv_chart = text.split('aria-label="KV cache use"')
    ticks = re.findall(r'text-anchor="end">([^<]+)<', requests_chart)
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks
    assert "50%" in kv_chart or "40%" in kv_chart


def test_run_report_links_index_and_raw_files(tmp_path):
    run_dir = tmp_path / "reports" / "20260101T000000Z" / "m"
    run_dir.mkdir(parents=True)
    assert index_href(str(run_dir)) == "../../index.html"
    assert index_href(str(tmp_path / "elsewhere")) is None
    page = render_run_report(run_results(config_extra={"label": "after upgrade"}), "../../index.html")
    for href in ("../../index.html", "results.json", "requests.jsonl"):
        assert f'href="{href}"' in page
    assert "after upgrade" in page


def test_one_load_step_draws_no_chart_but_says_so():
    step = {"label": "concurrency 8", "requests_per_s": 4.0, "output_tokens_per_s": 100.0,
            "ttft_ms": {"median": 10.0, "p99": 20.0}, "e2e_ms": {"median": 50.0, "p99": 90.0}, "valid": True}
    page = render_run_report(run_results(summary_extra={"steps": [step]}))
    assert "TTFT and E2E vs load: a single point" in page
    four = [dict(step, label=f"concurrency {c}", requests_per_s=float(c), output_tokens_per_s=25.0 * c)
            for c in (1, 4, 16, 64)]
    page = render_run_report(run_results(summary_extra={"steps": four}, config_extra={"concurrency": [1, 4, 16, 64]}))
    assert "a single point" not in page.split("Latency under load")[1].split("Per-request")[0]
    assert "concurrency 1, 4, 16, 64" in page
