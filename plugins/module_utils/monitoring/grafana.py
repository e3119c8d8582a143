"""Build the Grafana dashboards from panels.py with Grafana's own SDK (grafana-foundation-sdk,
pinned in requirements/control.lock). scripts/render-dashboards.py writes the result to
roles/monitoring/files/dashboards/, which the kubernetes target ships as ConfigMaps; a test
fails when the committed JSON is not this module's output."""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions, VizTooltipOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from ansible_collections.llmops.platform.plugins.module_utils.monitoring.panels import BOARDS, Board, Panel

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
HEIGHT = 8


def _panel(panel: Panel, panel_id: int) -> timeseries.Panel:
    builder = (
        timeseries.Panel()
        .id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .height(HEIGHT)
        .span(panel.width)
        .legend(
            VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["mean", "max"])
            .show_legend(True)
        )
        .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    )
    if panel.min is not None:
        builder = builder.min(panel.min)
    if panel.max is not None:
        builder = builder.max(panel.max)
    for index, query in enumerate(panel.queries):
        builder = builder.with_target(
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
            .range()
        )
    return builder


def build(board: Board) -> dict:
    builder = (
        gd.Dashboard(board.title)
        .uid(board.uid)
        .tags(list(board.tags))
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for var in board.variables:
        builder = builder.with_variable(
            gd.QueryVariable(var.name)
            .label(var.label)
            .datasource(DATASOURCE)
            .query({"query": var.query, "refId": var.name})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        builder = builder.with_row(gd.Row(row.title).id(panel_id))
        for panel in row.panels:
            panel_id += 1
            builder = builder.with_panel(_panel(panel, panel_id))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def render_all() -> dict[str, str]:
    """{file name: JSON text} of every dashboard, as written to the role's files/dashboards/."""
    return {board.filename: json.dumps(build(board), indent=2, sort_keys=True) + "\n" for board in BOARDS}
