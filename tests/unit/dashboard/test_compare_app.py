"""The Streamlit comparison dashboard under Streamlit's testing API (no server, no browser)."""
import json
import os
import shutil
import sys

import pytest
from streamlit.testing.v1 import AppTest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from fake_results import RUNS, write_tree  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.compare import METRICS  # noqa: E402

APP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "apps", "dashboard", "compare_app.py")
OLD, NEW = RUNS
# The fixture runs have no prefix_cache.json: the dashboard leaves out the hit-rate row then.
LABELS = [label for path, label, _ in METRICS if not path.startswith("prefix_cache.")]


@pytest.fixture()
def results(tmp_path, monkeypatch):
    write_tree(str(tmp_path))
    monkeypatch.setenv("LLMOPS_COMPARE_DIR", str(tmp_path))
    return tmp_path


def run(at):
    at.run(timeout=60)
    assert not at.exception, at.exception
    return at


def charts(at) -> list[str]:
    """Mark type of every chart on the page, in order ('bar', 'line')."""
    kinds = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        kinds.append((spec.get("mark") or spec["layer"][0]["mark"])["type"])
    return kinds


def test_overlay_is_the_default_and_shows_verdict_table_and_percentiles(results):
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert at.sidebar.multiselect[0].value == [NEW]  # newest first
    assert at.sidebar.selectbox[0].value == "chat" and at.sidebar.radio[0].value == "overlay"
    verdict = at.markdown[0].value
    assert verdict.startswith(f"**{NEW}** (baseline, managed): managed better beyond noise on 10 metric(s)")
    assert [s.value for s in at.subheader] == [f"{x} percentiles (ms)" for x in ("TTFT", "ITL", "E2E")]
    means = at.table[1].value
    assert list(means.columns) == [f"{NEW}/baseline", f"{NEW}/managed"]
    assert abs(means.loc["requests/s", f"{NEW}/managed"] - 7.6) < 1e-9
    assert charts(at) == ["bar", "line", "line", "line"]


def test_every_metric_of_the_issue_is_in_the_tables(results):
    # requests/s, output tokens/s, success rate, TTFT/ITL/E2E mean, median, p95, p99
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert list(at.table[1].value.index) == LABELS and len(LABELS) == 15
    assert at.selectbox[0].options == LABELS  # each can be the bar chart's metric


def test_comparison_table_matches_the_static_report(results):
    at = run(AppTest.from_file(APP, default_timeout=60))
    diff = at.table[0].value
    assert list(diff.columns) == ["baseline", "managed", "diff %", "beyond noise"]
    assert diff.loc["TTFT mean (ms)", "beyond noise"] == "yes, better"
    assert diff.loc["ITL mean (ms)", "beyond noise"] == "no"
    assert diff.loc["requests/s", "baseline"] == "6.1 [6-6.2]"
    at.sidebar.selectbox[0].set_value("code")
    run(at)
    assert "mixed: better on TTFT mean (ms)" in at.markdown[0].value
    assert at.table[0].value.loc["E2E p99 (ms)", "beyond noise"] == "yes, worse"


def test_side_by_side_and_single_and_two_runs(results):
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.sidebar.multiselect[0].set_value([OLD, NEW])
    at.sidebar.radio[0].set_value("side-by-side")
    run(at)
    assert [s.value for s in at.subheader] == [f"{r}/{a}" for r in (OLD, NEW) for a in ("baseline", "managed")]
    assert len(at.markdown) >= 2 and len(at.expander) == 2  # a verdict and a difference table per run
    assert charts(at) == ["bar", "line"] * 4  # latency bars and percentile curves per column
    at.sidebar.radio[0].set_value("single")
    run(at)
    assert at.selectbox[0].options[:1] == [f"{OLD}/baseline"]
    assert [m.label for m in at.metric] == ["requests/s", "output tokens/s", "success rate"]
    assert at.metric[0].value == "6.1"
    assert charts(at) == ["bar", "line"]


def test_run_without_both_arms_or_model_says_so(results):
    for k in (1, 2):
        shutil.rmtree(results / NEW / "managed" / f"run{k}" / "code")
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.sidebar.selectbox[0].set_value("code")
    run(at)
    assert at.markdown[0].value.endswith("model not in both arms") and not at.expander
    assert list(at.table[0].value.columns) == [f"{NEW}/baseline"]  # what there is, still shown
    shutil.rmtree(results / NEW / "managed")
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert "no baseline/managed pair" in at.markdown[0].value


def test_query_parameters_pick_runs_model_and_view(results):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"run": f"{OLD},nosuchrun", "model": "code", "view": "side-by-side"})
    run(at)
    assert at.sidebar.multiselect[0].value == [OLD] and at.sidebar.selectbox[0].value == "code"
    assert at.sidebar.radio[0].value == "side-by-side" and "mixed" in at.markdown[0].value
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"model": "nosuchmodel", "view": "nosuchview"})
    run(at)  # unknown values fall back to the defaults
    assert at.sidebar.selectbox[0].value == "chat" and at.sidebar.radio[0].value == "overlay"


def test_empty_dir_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_COMPARE_DIR", str(tmp_path / "none"))
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert "playbooks/compare.yml" in at.warning[0].value
