"""The one chart module every report uses (bench runs, sweeps, comparisons)."""
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.llmops.platform.plugins.module_utils import charts
from ansible_collections.llmops.platform.plugins.module_utils.compare_plots import svg_plot
from ansible_collections.llmops.platform.plugins.module_utils.tune.charts import objective_chart, pareto_chart

NS = "{http://www.w3.org/2000/svg}"


def texts(svg: str, cls: str | None = None) -> list[tuple[float, float, str]]:
    """(x, y, text) of every <text> element (of one class)."""
    root = ET.fromstring(svg)
    return [(float(t.get("x")), float(t.get("y")), t.text or "") for t in root.iter(NS + "text")
            if cls is None or t.get("class") == cls]


def tick_labels(svg: str, axis: str) -> list[str]:
    """x: labels under the plot; y: labels left of it."""
    box = next(ET.fromstring(svg).iter(NS + "rect"), None)
    ticks = texts(svg, "tk")
    if axis == "x":
        return [t for _, y, t in ticks if y == charts.H - charts.BOTTOM + 16]
    return [t for x, _, t in ticks if x == charts.LEFT - 6] if box is not None else []


@pytest.mark.parametrize("lo,hi,integer,expected", [
    (0, 1, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (0, 3, True, [0, 1, 2, 3]),
    (0, 2.2, True, [0, 1, 2]),
    (0, 97, True, [0, 20, 40, 60, 80]),
    (0, 12.5, False, [0, 2.5, 5, 7.5, 10, 12.5]),
])
def test_nice_ticks(lo, hi, integer, expected):
    assert charts.nice_ticks(lo, hi, integer=integer) == pytest.approx(expected)


def test_count_axes_have_whole_number_ticks():
    svg = objective_chart([10.0, 12.0, None, 11.0], "maximize", "output tokens/s")
    assert tick_labels(svg, "x") == ["0", "1", "2", "3"]
    rows = [(i * 0.1, i * 0.1 + 0.5, i * 0.1 + 0.2, i != 3) for i in range(7)]
    labels = [t for x, _, t in texts(charts.timeline_chart("Timeline", rows), "tk") if x == charts.LEFT - 6]
    assert labels and all(label.isdigit() for label in labels)


def test_legend_rows_sit_between_the_title_and_the_plot():
    names = [f"a rather long series name {i}" for i in range(7)]
    svg = charts.xy_chart("A long title that would once have run into the legend on the right",
                          [charts.Series(n, [(0, i), (1, i + 1)]) for i, n in enumerate(names)],
                          charts.Axis("x"), charts.Axis("y"))
    title = texts(svg, "ct")[0]
    legend = [(x, y) for x, y, t in texts(svg, "tk") if t in names]
    box_top = float([r for r in ET.fromstring(svg).iter(NS + "rect") if r.get("class") == "box"][0].get("y"))
    assert len(legend) == len(names)
    assert len({y for _, y in legend}) > 1  # wrapped onto several rows
    assert all(title[1] + 10 <= y <= box_top - 4 for _, y in legend)
    assert all(x + charts.CHAR_W * 20 < charts.W for x, _ in legend)


@pytest.mark.parametrize("html", [
    charts.xy_chart("TTFT vs load", [charts.Series("TTFT p50", [(4.0, 12.5)]), charts.Series("E2E p50", [(4.0, 80.0)])],
                    charts.Axis("concurrency", integer=True), charts.Axis("latency (ms)")),
    objective_chart([123.4], "maximize", "output tokens/s"),
    pareto_chart([(50.0, 900.0)], ["trial-0"]),
    charts.cdf_chart("Latency CDF", [("TTFT", [12.5])]),
    charts.histogram_chart("ITL", [3.0]),
])
def test_a_single_point_is_a_sentence_not_a_chart(html):
    assert html.startswith('<p class="chart-note">') and "<svg" not in html
    assert "single" in html


def test_the_sentence_gives_the_numbers_and_no_data_says_so():
    one = charts.xy_chart("TTFT vs load", [charts.Series("TTFT p50", [(4.0, 12.5)])],
                          charts.Axis("concurrency", integer=True), charts.Axis("latency (ms)"))
    assert "concurrency 4" in one and "TTFT p50 12.5" in one
    assert "no data" in charts.xy_chart("Empty", [], charts.Axis("x"), charts.Axis("y"))
    assert "no data" in charts.cdf_chart("Empty", [("TTFT", [])])


def test_threshold_line_failed_points_and_point_labels():
    svg = charts.xy_chart("Throughput vs latency", [charts.Series("E2E p99", [(1, 100), (2, 300)], labels=["a", "b"])],
                          charts.Axis("out tok/s"), charts.Axis("ms"), hline=("SLO 250 ms", 250))
    assert "SLO 250 ms" in svg and 'stroke-dasharray="6 4"' in svg
    assert {"a", "b"} <= {t for _, _, t in texts(svg)}
    assert "×" in objective_chart([1.0, None, 2.0], "minimize", "ms")  # the infeasible trial


def test_compare_plot_one_legend_entry_per_arm_and_categorical_ticks():
    svg = svg_plot("TTFT", {"baseline": [[1, 2, 3, 4, 8], [1, 2, 3, 5, 9]], "managed": [[1, 1, 1, 1, 2]]})
    assert svg.count("<polyline") == 3
    labels = [t for _, _, t in texts(svg, "tk")]
    assert labels.count("baseline (2)") == 1 and labels.count("managed (1)") == 1
    assert tick_labels(svg, "x") == ["p50", "p90", "p95", "p99", "p999"]
