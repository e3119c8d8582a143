"""Serving metrics from the local Prometheus for a time window: the Grafana dashboard's panels
(plugins/module_utils/monitoring/panels.py, the same queries) without a Grafana server.

    scripts/llmops dashboard        # then "monitoring" in the sidebar

Deep links: ?minutes=30, or ?start=<unix>&end=<unix> for a benchmark run's window, &model=<name>.
Prometheus: LLMOPS_PROMETHEUS_URL, else the local target's (LLMOPS_HOME/run/monitoring.json).
"""

from __future__ import annotations

import os
import sys
import time

import pandas as pd
import streamlit as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import panels  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.monitoring.prometheus_api import (  # noqa: E402
    PrometheusError,
    local_url,
    query_range,
)

# What this page shows, by the Grafana panel it mirrors (same titles, same PromQL).
SECTIONS = [
    ("Queue depth", ["Running requests", "Waiting requests (queue)"]),
    ("KV cache", ["KV cache usage"]),
    ("Throughput", ["Generated tokens/s"]),
    ("Latency from the server histograms", ["Time to first token", "End-to-end latency"]),
    ("Router", ["Router choices per replica"]),
]
BY_TITLE = {p.title: p for p in panels.VLLM.panels()}
WINDOWS = [5, 15, 30, 60, 180]


def window(params) -> tuple[float, float]:
    """(start, end) from ?start&end, else the last ?minutes (default 15)."""
    now = time.time()
    try:
        if params.get("start") and params.get("end"):
            return float(params["start"]), float(params["end"])
        minutes = float(params.get("minutes", 15))
    except ValueError:
        minutes = 15
    return now - minutes * 60, now


def step_for(start: float, end: float) -> float:
    """About 240 points per chart, never finer than 1 s."""
    return max(1.0, round((end - start) / 240.0))


def frame(series) -> pd.DataFrame:
    columns = {s.name: pd.Series({pd.Timestamp(t, unit="s"): v for t, v in s.points}) for s in series if s.points}
    return pd.DataFrame(columns).sort_index() if columns else pd.DataFrame()


def unit_label(unit: str) -> str:
    return {"s": "seconds", "percentunit": "fraction (1 = full)", "reqps": "requests/s", "short": ""}.get(unit, unit)


st.set_page_config(page_title="llmops: serving metrics", layout="wide")
st.title("Serving metrics (Prometheus)")
params = st.query_params
url = st.sidebar.text_input("Prometheus URL", os.environ.get("LLMOPS_PROMETHEUS_URL") or local_url())
start, end = window(params)
if not (params.get("start") and params.get("end")):
    minutes = st.sidebar.selectbox(
        "Window (minutes)",
        WINDOWS,
        index=WINDOWS.index(int((end - start) / 60)) if int((end - start) / 60) in WINDOWS else 1,
    )
    start = end - minutes * 60
step = step_for(start, end)
rate_window = st.sidebar.selectbox(
    "Rate window",
    ["30s", "1m", "2m", "5m"],
    index=1,
    help="$__rate_interval of the Grafana panels: at least 4 scrape intervals",
)
model = params.get("model", "")
selection = {"model": model} if model else {}
st.caption(
    f"{url} · {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))} to "
    f"{time.strftime('%H:%M:%S', time.localtime(end))} · step {step:g}s · "
    f'model {model or "all"} · queries as in the Grafana dashboard "{panels.VLLM.title}"'
)

problems = []
for heading, titles in SECTIONS:
    st.header(heading)
    cols = st.columns(len(titles))
    for col, title in zip(cols, titles):
        panel = BY_TITLE[title]
        with col:
            st.subheader(title)
            series = []
            try:
                for q in panel.queries:
                    series += query_range(
                        url, panels.substitute(q.expr, selection, rate_window), start, end, step, q.legend
                    )
            except PrometheusError as exc:
                problems.append(str(exc))
                st.error(str(exc))
                continue
            data = frame(series)
            if data.empty:
                st.info("No data in this window.")
                continue
            st.line_chart(data, y_label=unit_label(panel.unit))
            last = data.ffill().iloc[-1]
            st.table(
                pd.DataFrame({"last": last.map(lambda v: f"{v:.4g}"), "max": data.max().map(lambda v: f"{v:.4g}")})
            )
if problems:
    st.sidebar.error(f"{len(problems)} panel(s) failed: {problems[0]}")
