"""The Streamlit comparison dashboard under Streamlit's testing API (no server, no browser)."""
import json
import os

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "apps", "dashboard", "compare_app.py")


def summary(rps, ttft):
    lat = {"mean": ttft, "median": ttft, "p90": ttft * 1.5, "p95": ttft * 2, "p99": ttft * 3, "p999": ttft * 4}
    return {"throughput": {"requests_per_s": rps, "output_tokens_per_s": rps * 64},
            "requests": {"success_rate": 1.0}, "ttft_ms": lat, "e2e_ms": lat}


@pytest.fixture()
def results(tmp_path, monkeypatch):
    for run in ("20260101T000000Z", "20260102T000000Z"):
        for k, (b, m) in enumerate([(10.0, 14.0), (10.4, 14.2)], 1):
            for arm, rps, ttft in (("baseline", b, 200.0 + k), ("managed", m, 100.0 + k)):
                d = tmp_path / run / arm / f"run{k}" / "chat"
                d.mkdir(parents=True)
                (d / "results.json").write_text(json.dumps({"summary": summary(rps, ttft)}))
    monkeypatch.setenv("LLMOPS_COMPARE_DIR", str(tmp_path))
    return tmp_path


def run(at):
    at.run(timeout=60)
    assert not at.exception, at.exception
    return at


def test_overlay_is_the_default_and_shows_verdict_and_percentiles(results):
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert at.sidebar.multiselect[0].value == ["20260102T000000Z"]  # newest first
    assert "managed better beyond noise" in at.markdown[0].value
    assert [s.value for s in at.subheader] == ["TTFT percentiles (ms)", "E2E percentiles (ms)"]
    frame = at.dataframe[0].value
    assert list(frame.columns) == ["20260102T000000Z/baseline", "20260102T000000Z/managed"]
    assert abs(frame.loc["requests/s", "20260102T000000Z/managed"] - 14.1) < 1e-9


def test_side_by_side_and_single_and_two_runs(results):
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.sidebar.multiselect[0].set_value(["20260101T000000Z", "20260102T000000Z"])
    at.sidebar.radio[0].set_value("side-by-side")
    run(at)
    assert len(at.subheader) == 4  # one column per run x arm
    at.sidebar.radio[0].set_value("single")
    run(at)
    assert len(at.dataframe) == 1 and at.selectbox[0].options[:1] == ["20260101T000000Z/baseline"]


def test_empty_dir_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_COMPARE_DIR", str(tmp_path / "none"))
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert "playbooks/compare.yml" in at.warning[0].value
