"""Outputs of a real engine run: schema-valid summary, CSV, HTML sections, provenance."""
import asyncio
import csv
import io
import json
import os

import jsonschema  # noqa: E402
import pytest
from fake_openai import FakeOpenAI, free_port, start  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench import csvout  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (  # noqa: E402
    BenchConfig,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import Engine  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (  # noqa: E402
    render_run_report,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.results import (  # noqa: E402
    build_engine_results,
    load_results,
    save_results,
)

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "module_utils",
                      "bench", "schema", "summary-v1.json")


def schema():
    with open(SCHEMA, encoding="utf-8") as handle:
        return json.load(handle)


def engine_results(mode="ok", **overrides):
    async def go():
        runner, port = await start(FakeOpenAI(ttft=0.005, itl=0.001))
        try:
            options = dict(base_url=f"http://127.0.0.1:{port}/{mode}", model="fixture",
                           num_requests=8, concurrency=2, max_tokens=3, prompt_tokens=4,
                           request_timeout_s=5.0, run_timeout_s=30.0,
                           server_args={"max_num_seqs": 8}, slo_e2e_ms=1000.0)
            options.update(overrides)
            engine = Engine(BenchConfig(**options))
            await engine.run()
            return build_engine_results(engine)
        finally:
            await runner.cleanup()
    return asyncio.run(go())


@pytest.fixture(scope="module")
def sweep_results():
    return engine_results(profile="sweep", sweep_steps=1)


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_every_profile_summary_matches_schema(sweep_results):
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate(sweep_results["summary"])
    validator.validate(engine_results()["summary"])
    validator.validate(engine_results(repeats=2, num_requests=3)["summary"])


def test_schema_rejects_broken_summaries(sweep_results):
    validator = jsonschema.Draft202012Validator(schema())
    broken = json.loads(json.dumps(sweep_results["summary"]))
    del broken["ttft_ms"]["p99"]
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(sweep_results["summary"]))
    broken["requests"]["error_classes"] = {"weird": 1}
    assert list(validator.iter_errors(broken))


def test_provenance_in_every_record(sweep_results, tmp_path):
    res = sweep_results
    assert res["server_args"] == {"max_num_seqs": 8}
    assert res["seeds"]["prompts"] == 0 and res["versions"]["engine"]
    assert res["client_args"]["profile"] == "sweep" and "api_key" not in res["client_args"]
    assert isinstance(res["server_info"], dict)  # fixture has no /version: empty, not missing
    paths = save_results(res, str(tmp_path / "run1"))
    assert load_results(paths["results"])["summary"]["schema"] == schema()["$id"]
    rows = list(csv.DictReader(io.StringIO(open(paths["steps_csv"]).read())))
    assert [r["label"] for r in rows] == ["synchronous", "max throughput", rows[2]["label"]]
    assert rows[0]["model"] == "fixture" and rows[0]["run"] == "run1"
    assert list(rows[0]) == csvout.COLUMNS


def test_report_has_every_section(sweep_results):
    html = render_run_report(sweep_results)
    for needle in ("Latency CDF", "TTFT and E2E vs load", "Throughput vs latency",
                   "SLO 1000 ms", "Per-request timeline", "Load steps",
                   "Client vs server", "Server gauges", "Provenance", "max_num_seqs",
                   "dispatch lag"):
        assert needle in html, needle
    assert "<script" not in html


def test_failed_endpoint_is_invalid_everywhere():
    port = free_port()

    async def go():
        engine = Engine(BenchConfig(base_url=f"http://127.0.0.1:{port}", model="m",
                                    num_requests=3, request_timeout_s=2, run_timeout_s=10))
        await engine.run()
        return build_engine_results(engine)
    res = asyncio.run(go())
    assert res["summary"]["valid"] is False
    assert res["summary"]["requests"]["error_classes"] == {"connection_refused": 3}
    assert res["summary"]["server_metrics_available"] is False
    jsonschema.Draft202012Validator(schema()).validate(res["summary"])
    assert "invalid" in render_run_report(res)


def test_runs_csv_across_runs(sweep_results, tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (
        discover_runs,
    )
    root = tmp_path / "reports"
    save_results(sweep_results, str(root / "20260101T000000Z" / "fixture"))
    save_results(engine_results(), str(root / "20260102T000000Z" / "fixture"))
    entries, problems = discover_runs(str(root))
    assert not problems
    text = csvout.render(row for e in reversed(entries) for row in csvout.rows(e["dir"], e["results"]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["run"].split("/")[0] for r in rows] == ["20260101T000000Z"] * 3 + ["20260102T000000Z"]
    assert rows[-1]["profile"] == "concurrency" and float(rows[-1]["ttft_ms_p99"]) > 0
