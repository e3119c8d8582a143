"""Dashboards as code: the committed JSON is what panels.py builds with Grafana's SDK, and every
panel and variable query parses as PromQL in promtool (Prometheus's own parser)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from rule_files import ROOT, run_promtool

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import grafana, panels

DASHBOARDS = os.path.join(ROOT, "roles", "monitoring", "files", "dashboards")


def test_committed_dashboards_are_the_code_output():
    rendered = grafana.render_all()
    assert sorted(rendered) == sorted(os.listdir(DASHBOARDS))
    for name, text in rendered.items():
        assert open(os.path.join(DASHBOARDS, name), encoding="utf-8").read() == text, \
            f"{name} drifted from panels.py: run scripts/render-dashboards.py"


def test_render_script_check_mode_reports_drift(tmp_path, monkeypatch):
    script = os.path.join(ROOT, "scripts", "render-dashboards.py")
    ok = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr


def _panel_queries() -> list[tuple[str, str]]:
    return [(f"{board.filename}: {panel.title}", q.expr) for board in panels.BOARDS for panel in board.panels()
            for q in panel.queries]


def _variable_selectors() -> list[tuple[str, str]]:
    out = []
    for board in panels.BOARDS:
        for var in board.variables:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", var.query)
            assert match, var.query
            out.append((f"{board.filename}: ${var.name}", match.group(1)))
    return out


def _promtool_parse(tmp_path, exprs: list[str]) -> subprocess.CompletedProcess:
    """promtool has no bare query parser: each query becomes a recording rule and `check rules`
    parses it exactly as Prometheus would."""
    rules = [{"record": f"dashboard:query:{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, width=1000))
    return run_promtool("check", "rules", str(path))


def test_every_panel_and_variable_query_parses_in_promtool(tmp_path):
    queries = _panel_queries() + _variable_selectors()
    assert len(queries) > 30
    exprs = [panels.substitute(expr, rate_interval="5m") for _, expr in queries]
    assert not any("$" in e for e in exprs)
    result = _promtool_parse(tmp_path, exprs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_parsing_catches_a_broken_query(tmp_path):
    result = _promtool_parse(tmp_path, ['sum by (pod (vllm:num_requests_running{pod=~".*"})'])
    assert result.returncode != 0


def test_substitute_fills_selections_and_defaults_to_all():
    expr = 'sum(rate(x{namespace=~"$namespace", pod=~"$pod"}[$__rate_interval]))'
    assert panels.substitute(expr, {"pod": "vllm-a-0|vllm-a-1"}, "30s") == \
        'sum(rate(x{namespace=~".*", pod=~"vllm-a-0|vllm-a-1"}[30s]))'


def test_generated_dashboards_keep_grafana_provisioning_shape():
    for board in panels.BOARDS:
        data = json.loads(grafana.render_all()[board.filename])
        assert data["uid"] == board.uid and data["title"] == board.title
        ids = [p["id"] for p in data["panels"]]
        assert len(ids) == len(set(ids))
        assert [p["title"] for p in data["panels"] if p["type"] == "row"] == [r.title for r in board.rows]
        for panel in (p for p in data["panels"] if p["type"] == "timeseries"):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
        names = [v["name"] for v in data["templating"]["list"]]
        assert names == ["datasource"] + [v.name for v in board.variables]


@pytest.mark.parametrize("board", panels.BOARDS, ids=lambda b: b.filename)
def test_no_two_panels_overlap(board):
    data = json.loads(grafana.render_all()[board.filename])
    cells = set()
    for panel in data["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
