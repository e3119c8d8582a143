"""The Streamlit monitoring page under Streamlit's AppTest, against a fake Prometheus API."""
import os
import socket
import sys

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from fake_prometheus import FakePrometheus  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import panels  # noqa: E402

PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "apps", "dashboard", "pages", "monitoring.py")
TITLES = ["Running requests", "Waiting requests (queue)", "KV cache usage", "Generated tokens/s",
          "Time to first token", "End-to-end latency", "Router choices per replica"]


@pytest.fixture()
def prometheus(monkeypatch):
    fake = FakePrometheus()
    monkeypatch.setenv("LLMOPS_PROMETHEUS_URL", fake.url)
    yield fake
    fake.close()


def run(at):
    at.run(timeout=60)
    assert not at.exception, at.exception
    return at


def test_page_shows_every_panel_with_the_dashboard_queries(prometheus):
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert [h.value for h in at.header] == ["Queue depth", "KV cache", "Throughput",
                                            "Latency from the server histograms", "Router"]
    assert [s.value for s in at.subheader] == TITLES
    assert len(at.get("vega_lite_chart")) == len(TITLES)
    asked = [q["query"] for q in prometheus.queries]
    by_title = {p.title: p for p in panels.VLLM.panels()}
    expected = [panels.substitute(q.expr, {}, "1m") for t in TITLES for q in by_title[t].queries]
    assert asked == expected
    assert 'sum by (pod) (vllm:num_requests_waiting{namespace=~".*", model_name=~".*", pod=~".*"})' in asked
    assert any("histogram_quantile(0.95" in q and "vllm:e2e_request_latency_seconds_bucket" in q for q in asked)
    # Legends come from the panel's legendFormat; the NaN sample is dropped, the last real value kept.
    table = at.table[0].value
    assert list(table.index) == ["vllm-chat-0", "vllm-chat-1"]
    assert list(table["last"]) == ["5", "14"]


def test_model_and_window_deep_link(prometheus):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["model"] = "chat"
    at.query_params["start"] = "1700000000"
    at.query_params["end"] = "1700000600"
    run(at)
    assert all('model_name=~"chat"' in q["query"] or 'model=~"chat"' in q["query"] for q in prometheus.queries)
    assert {(q["start"], q["end"], q["step"]) for q in prometheus.queries} == {("1700000000.000", "1700000600.000", "2")}
    assert "model chat" in at.caption[0].value


def test_rate_window_applies_to_rate_queries(prometheus):
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    at.sidebar.selectbox[1].set_value("5m")
    run(at)
    assert any("[5m]" in q["query"] for q in prometheus.queries[-10:])


def test_unreachable_prometheus_says_how_to_fix_it(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LLMOPS_PROMETHEUS_URL", f"http://127.0.0.1:{port}")
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert len(at.main.error) == len(TITLES)
    assert "playbooks/monitoring.yml" in at.error[0].value
    assert "7 panel(s) failed" in at.sidebar.error[0].value


def test_local_url_comes_from_the_monitoring_role_state(tmp_path, monkeypatch):
    from ansible_collections.llmops.platform.plugins.module_utils.monitoring.prometheus_api import local_url

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "monitoring.json").write_text('{"prometheus_url": "http://127.0.0.1:26002"}')
    assert local_url(str(tmp_path)) == "http://127.0.0.1:26002"
    assert local_url(str(tmp_path / "none")) == "http://127.0.0.1:9090"
