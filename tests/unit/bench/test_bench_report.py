"""results.json round trip, the per-run HTML report and the cross-run index."""
import json
import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import summarize
from ansible_collections.llmops.platform.plugins.module_utils.bench.records import (
    RequestRecord,
    RunResult,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (
    discover_runs,
    render_index,
    render_run_report,
    write_run_report,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.results import (
    build_results,
    load_requests,
    load_results,
    write_results,
)


def synthetic_run(model="chat", n=20, failures=0, api_key="s3cret"):
    config = BenchConfig(base_url="http://127.0.0.1:8000", model=model, num_requests=n,
                         api_key=api_key)
    records = []
    for i in range(n):
        if i < failures:
            rec = RequestRecord(index=i, status=500, send_s=i * 0.1, end_s=i * 0.1 + 0.01)
            rec.fail("http_500", "<script>alert(1)</script>")
        else:
            ttft = 0.05 + 0.002 * i
            chunks = [ttft + 0.01 * k for k in range(8)]
            rec = RequestRecord(index=i, send_s=i * 0.1, ttft_s=ttft, chunk_times=chunks,
                                itl_s=[0.01] * 7, e2e_s=chunks[-1] + 0.001, input_tokens=16,
                                output_tokens=8, status=200, end_s=i * 0.1 + chunks[-1])
        records.append(rec)
    return RunResult(config=config, records=records, started_wall=1_700_000_000.0,
                     ended_wall=1_700_000_002.0, duration_s=2.0)


def test_results_round_trip_without_api_key(tmp_path):
    run = synthetic_run()
    paths = write_results(run, str(tmp_path))
    text = open(paths["results"]).read()
    assert "s3cret" not in text and "api_key" not in text
    data = load_results(str(tmp_path))
    assert data["schema_version"] == "1" and data["versions"]["engine"]
    assert data["versions"]["python"] and data["config"]["model"] == "chat"
    assert data["summary"] == json.loads(json.dumps(summarize(run)))
    assert len(data["records"]) == 20 and load_requests(str(tmp_path)) == data["records"]
    with open(tmp_path / "bad.json", "w") as handle:
        json.dump({"schema_version": "0"}, handle)
    with pytest.raises(ValueError):
        load_results(str(tmp_path / "bad.json"))


def test_run_report_has_table_and_svg():
    html = render_run_report(build_results(synthetic_run(failures=2)))
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<polyline" in html
    for label in ("TTFT", "ITL", "TPOT", "E2E", "http_500", "mean 95% CI"):
        assert f">{label}<" in html
    assert "invalid" in html and "10.0% of requests failed" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # error text is escaped
    assert "http://" not in html.replace("http://127.0.0.1:8000", "").replace(
        "http://www.w3.org/2000/svg", "")  # nothing fetched from the network


def write_run(root, stamp, model, **kwargs):
    out = os.path.join(root, stamp, model)
    run = synthetic_run(model=model, **kwargs)
    write_results(run, out)
    write_run_report(build_results(run), out)


def test_index_lists_runs_newest_first_with_links(tmp_path):
    root = str(tmp_path)
    write_run(root, "20250101T000000Z", "chat")
    write_run(root, "20250102T000000Z", "chat")
    write_run(root, "20250102T000000Z", "chat-lora", failures=5)
    os.makedirs(os.path.join(root, "20250103T000000Z", "broken"))
    with open(os.path.join(root, "20250103T000000Z", "broken", "results.json"), "w") as f:
        f.write("{not json")

    entries, problems = discover_runs(root)
    assert [(e["run"], e["dir"]) for e in entries] == [
        ("20250102T000000Z", os.path.join("20250102T000000Z", "chat-lora")),
        ("20250102T000000Z", os.path.join("20250102T000000Z", "chat")),
        ("20250101T000000Z", os.path.join("20250101T000000Z", "chat")),
    ]
    assert len(problems) == 1 and "broken" in problems[0]

    html = render_index(root)
    assert html.count("<tbody><tr>") == 1 and html.count("<tr>") == 1 + 3  # header + 3 rows
    assert 'href="20250102T000000Z/chat-lora/report.html"' in html
    assert 'href="20250101T000000Z/chat/report.html"' in html
    assert html.index("20250102T000000Z/chat-lora") < html.index("20250101T000000Z/chat")
    assert html.count("<svg") >= 2 and "Latest run · 20250102T000000Z" in html
    assert "badge bad" in html and "badge ok" in html and "Skipped" in html
    assert render_index(root) == html  # deterministic: re-rendering is a no-op


def test_index_of_empty_root(tmp_path):
    html = render_index(str(tmp_path))
    assert "No results yet." in html and "<svg" not in html
