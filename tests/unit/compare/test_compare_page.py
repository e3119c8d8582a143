"""The comparison page: percentile overlay per repeat, the compare index, the reports index link."""
import json
import os
import re

from ansible_collections.llmops.platform.plugins.module_utils.compare import render_index_section, write_comparison
from ansible_collections.llmops.platform.plugins.module_utils.compare_plots import percentile_series, svg_plot


def summary(ttft):
    lat = {"mean": ttft, "median": ttft, "p90": ttft * 1.5, "p95": ttft * 2, "p99": ttft * 3, "p999": ttft * 4}
    return {"throughput": {"requests_per_s": 10.0}, "requests": {"success_rate": 1.0}, "ttft_ms": lat, "e2e_ms": lat}


def write(root, arm, rep, ttft):
    d = os.path.join(root, arm, f"run{rep}", "chat")
    os.makedirs(d)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"summary": summary(ttft)}, f)


def test_series_has_one_line_per_repeat_and_skips_missing_latencies():
    runs = {"baseline": {"chat": [summary(100.0), summary(110.0)]}, "managed": {"chat": [summary(50.0)]}}
    series = percentile_series(runs, ["baseline", "managed"])
    assert series["chat"]["ttft_ms"]["baseline"] == [[100.0, 150.0, 200.0, 300.0, 400.0],
                                                     [110.0, 165.0, 220.0, 330.0, 440.0]]
    assert len(series["chat"]["ttft_ms"]["managed"]) == 1
    assert series["chat"]["itl_ms"]["baseline"] == []  # not in these summaries


def test_svg_scales_to_the_largest_value():
    svg = svg_plot("TTFT", {"a": [[1.0, 2.0, 3.0, 4.0, 8.0]], "b": [[1.0, 1.0, 1.0, 1.0, 2.0]]})
    assert svg.count("<polyline") == 2 and "a (1)" in svg
    box = re.search(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="box"', svg)
    top, height = float(box.group(1)), float(box.group(2))
    highest = min(float(p.split(",")[1]) for line in re.findall(r'points="([^"]+)"', svg) for p in line.split())
    assert top <= highest <= top + 0.1 * height  # the largest value reaches (nearly) the top of the plot


def test_page_index_and_report_link(tmp_path):
    reports = tmp_path / "reports"
    root = reports / "compare" / "20260101T000000Z"
    for k, (b, m) in enumerate([(100.0, 50.0), (104.0, 52.0)], 1):
        write(str(root), "baseline", k, b)
        write(str(root), "managed", k, m)
    out = write_comparison(str(root), "baseline", "managed", ["unequal replicas"])
    page = open(out["paths"]["html"]).read()
    assert page.count("<svg") == 2  # TTFT and E2E; no ITL data
    assert page.count("<polyline") == 8  # 2 plots x 2 arms x 2 repeats
    index = open(out["paths"]["index"]).read()
    assert "20260101T000000Z/comparison.html" in index and "managed better" in index
    assert "compare/20260101T000000Z/comparison.html" in render_index_section(str(reports))
    assert render_index_section(str(tmp_path / "empty")) == ""
