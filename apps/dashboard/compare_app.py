"""Streamlit dashboard over routing comparisons (reports/compare/<run>/<arm>/run<k>/<model>/).

    LLMOPS_COMPARE_DIR=reports/compare streamlit run apps/dashboard/compare_app.py

Pick comparison runs and a model; view one series, several side by side, or all overlaid
(bar charts of the means, percentile curves). The math is the compare module's, so the page
agrees with comparison.html (the static report for people who will not run a server).
"""
from __future__ import annotations

import os
import sys

import pandas as pd
import streamlit as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils.compare import METRICS, _get, compare, load_runs  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.compare_plots import LATENCIES, PERCENTILES  # noqa: E402


def default_dir() -> str:
    return os.environ.get("LLMOPS_COMPARE_DIR", os.path.join(ROOT, "reports", "compare"))


@st.cache_data
def load(run_dir: str) -> dict:
    return load_runs(run_dir)


def series_means(runs: dict, run: str, model: str) -> dict[str, dict[str, float]]:
    """{'<run>/<arm>': {metric label: mean over repeats}} for one model."""
    out = {}
    for arm, models in runs.items():
        summaries = models.get(model, [])
        values = {label: [v for v in (_get(s, path) for s in summaries) if v is not None] for path, label, _ in METRICS}
        out[f"{run}/{arm}"] = {k: sum(v) / len(v) for k, v in values.items() if v}
    return out


def percentile_frame(runs: dict, run: str, model: str, key: str) -> pd.DataFrame:
    """Rows = percentile, columns = '<run>/<arm>' (mean over repeats)."""
    cols = {}
    for arm, models in runs.items():
        lines = [[(s.get(key) or {}).get(name) for name, _ in PERCENTILES] for s in models.get(model, [])]
        lines = [line for line in lines if all(isinstance(v, (int, float)) for v in line)]
        if lines:
            cols[f"{run}/{arm}"] = [sum(col) / len(col) for col in zip(*lines)]
    return pd.DataFrame(cols, index=[f"p{p:g}" for _, p in PERCENTILES])


st.set_page_config(page_title="llmops: routing comparisons", layout="wide")
st.title("Baseline vs managed routing")
base = st.sidebar.text_input("Results directory", default_dir())
available = sorted((d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))), reverse=True) \
    if os.path.isdir(base) else []
if not available:
    st.warning(f"No comparison runs under {base}: run `ansible-playbook playbooks/compare.yml` first.")
    st.stop()
picked = st.sidebar.multiselect("Comparison runs", available, default=available[:1])
data = {run: load(os.path.join(base, run)) for run in picked}
models = sorted({m for runs in data.values() for arm in runs.values() for m in arm})
if not models:
    st.info("Pick at least one run with results.")
    st.stop()
model = st.sidebar.selectbox("Model", models)
view = st.sidebar.radio("View", ["single", "side-by-side", "overlay"], index=2)

means: dict[str, dict[str, float]] = {}
for run, runs in data.items():
    means.update(series_means(runs, run, model))
table = pd.DataFrame(means)

for run, runs in data.items():
    arms = sorted(runs)
    if "baseline" in runs and "managed" in runs:
        verdict = compare(runs, "baseline", "managed")["models"].get(model, {}).get("verdict", "model not in both arms")
        st.markdown(f"**{run}** ({', '.join(arms)}): {verdict}")

if view == "single":
    pick = st.selectbox("Series", list(table.columns))
    st.dataframe(table[[pick]], use_container_width=True)
    st.bar_chart(table[[pick]].T, horizontal=False)
elif view == "side-by-side":
    cols = st.columns(max(1, len(table.columns)))
    for col, name in zip(cols, table.columns):
        with col:
            st.subheader(name)
            st.dataframe(table[[name]], use_container_width=True)
            latencies = table[[name]].loc[[label for _, label, _ in METRICS if label in table.index and "ms" in label]]
            st.bar_chart(latencies)
else:
    st.dataframe(table, use_container_width=True)
    metric = st.selectbox("Bar chart metric", list(table.index))
    st.bar_chart(table.loc[[metric]].T)
    for key, label in LATENCIES:
        frames = [percentile_frame(runs, run, model, key) for run, runs in data.items()]
        frame = pd.concat(frames, axis=1) if frames else pd.DataFrame()
        if not frame.empty:
            st.subheader(f"{label} percentiles (ms)")
            st.line_chart(frame)
