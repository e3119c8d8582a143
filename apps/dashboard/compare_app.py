"""Streamlit dashboard over routing comparisons (reports/compare/<run>/<arm>/run<k>/<model>/).

    scripts/llmops dashboard [--dir reports/compare]      # or: make dashboard

Pick comparison runs and a model; view one series, several side by side, or all overlaid
(bar charts of the means, percentile curves). The math is the compare module's, so the page
agrees with comparison.html (the static report for people who will not run a server).
Tables are st.table (HTML), not st.dataframe (a canvas grid), so every number is page text.
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

LATENCY_LABELS = [label for _, label, _ in METRICS if label.endswith("(ms)")]
VIEWS = ["single", "side-by-side", "overlay"]
HEADLINE = ["requests/s", "output tokens/s", "success rate"]
NOISE = {None: "n/a (1 run)", True: "yes", False: "no"}
VERDICT_COLORS = {"yes, better": "color: #070", "yes, worse": "color: #b00"}  # as comparison.html


def default_dir() -> str:
    return os.environ.get("LLMOPS_COMPARE_DIR", os.path.join(ROOT, "reports", "compare"))


def fingerprint(run_dir: str) -> tuple:
    """Changes when a results.json appears or is rewritten, so a run still being written by
    playbooks/compare.yml shows up on the next rerun instead of staying cached."""
    return tuple(sorted((os.path.join(d, "results.json"), os.stat(os.path.join(d, "results.json")).st_mtime_ns)
                        for d, _, files in os.walk(run_dir) if "results.json" in files))


@st.cache_data(max_entries=64)
def load(run_dir: str, stamp: tuple) -> dict:
    return load_runs(run_dir)


def series_means(runs: dict, run: str, model: str) -> dict[str, dict[str, float]]:
    """{'<run>/<arm>': {metric label: mean over repeats}} for one model (arms that ran it)."""
    out = {}
    for arm, models in runs.items():
        summaries = models.get(model, [])
        if not summaries:
            continue
        values = {label: [v for v in (_get(s, path) for s in summaries) if v is not None] for path, label, _ in METRICS}
        out[f"{run}/{arm}"] = {k: sum(v) / len(v) for k, v in values.items() if v}
    return out


def mean_percentiles(summaries: list[dict], key: str) -> list[float] | None:
    """The latency's PERCENTILES, averaged over repeats (None when no repeat has them all)."""
    lines = [[(s.get(key) or {}).get(name) for name, _ in PERCENTILES] for s in summaries]
    lines = [line for line in lines if all(isinstance(v, (int, float)) for v in line)]
    return [sum(col) / len(col) for col in zip(*lines)] if lines else None


def percentile_frame(columns: dict[str, list[float] | None]) -> pd.DataFrame:
    """Rows = percentile (p50..p99.9), one column per non-empty series."""
    return pd.DataFrame({k: v for k, v in columns.items() if v}, index=[f"p{p:g}" for _, p in PERCENTILES])


def num(value: float) -> str:
    """4 significant digits, but never an exponent for latencies in the thousands of ms."""
    return "-" if pd.isna(value) else f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def comparison_table(result: dict, model: str) -> pd.DataFrame:
    """The static report's per-metric rows: means [min-max], diff %, noise, beyond noise."""
    rows = {}
    for r in result["models"].get(model, {}).get("metrics", []):
        b, m = r["baseline"], r["managed"]
        rows[r["label"]] = {"baseline": f"{num(b['mean'])} [{num(b['min'])}-{num(b['max'])}]",
                            "managed": f"{num(m['mean'])} [{num(m['min'])}-{num(m['max'])}]",
                            "diff %": "-" if r["diff_pct"] is None else f"{r['diff_pct']:+.1f}",
                            "beyond noise": NOISE[r["exceeds_noise"]] + (
                                "" if not r["exceeds_noise"] else (", better" if r["managed_better"] else ", worse"))}
    return pd.DataFrame.from_dict(rows, orient="index")


def latency_curves(summaries: list[dict]) -> pd.DataFrame:
    return percentile_frame({label: mean_percentiles(summaries, key) for key, label in LATENCIES})


def show_table(frame: pd.DataFrame) -> None:
    st.table(frame.style.format(num))


st.set_page_config(page_title="llmops: routing comparisons", layout="wide")
st.title("Baseline vs managed routing")
base = st.sidebar.text_input("Results directory", default_dir())
available = sorted((d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))), reverse=True) \
    if os.path.isdir(base) else []
if not available:
    st.warning(f"No comparison runs under {base}: run `ansible-playbook playbooks/compare.yml` first.")
    st.stop()
# Deep links (?run=A,B&model=M&view=single) pick the defaults, for shared links and screenshots.
query = st.query_params
linked = [r for r in query.get("run", "").split(",") if r in available]
picked = st.sidebar.multiselect("Comparison runs", available, default=linked or available[:1])
data = {run: load(os.path.join(base, run), fingerprint(os.path.join(base, run))) for run in picked}
models = sorted({m for runs in data.values() for arm in runs.values() for m in arm})
if not models:
    st.info("Pick at least one run with results.")
    st.stop()
model = st.sidebar.selectbox("Model", models, index=models.index(query["model"]) if query.get("model") in models else 0)
view = st.sidebar.radio("View", VIEWS, index=VIEWS.index(query["view"]) if query.get("view") in VIEWS else 2)

means: dict[str, dict[str, float]] = {}
summaries: dict[str, list[dict]] = {}  # '<run>/<arm>' -> this model's summaries
for run, runs in data.items():
    means.update(series_means(runs, run, model))
    summaries.update({f"{run}/{arm}": per_model.get(model, []) for arm, per_model in runs.items()})
table = pd.DataFrame(means).reindex([label for _, label, _ in METRICS]).dropna(how="all")

for run, runs in data.items():
    arms = sorted(runs)
    if "baseline" in runs and "managed" in runs:
        result = compare(runs, "baseline", "managed")
        verdict = result["models"].get(model, {}).get("verdict", "model not in both arms")
        st.markdown(f"**{run}** ({', '.join(arms)}): {verdict}")
        diff = comparison_table(result, model)
        if not diff.empty:
            with st.expander(f"{run}: difference per metric and run-to-run noise", expanded=len(data) == 1):
                st.table(diff.style.map(lambda v: VERDICT_COLORS.get(v, ""), subset=["beyond noise"]))
    else:
        st.markdown(f"**{run}** ({', '.join(arms)}): no baseline/managed pair to compare")

if view == "single":
    pick = st.selectbox("Series", list(table.columns))
    cols = st.columns(len(HEADLINE))
    for col, label in zip(cols, HEADLINE):
        value = table.at[label, pick] if label in table.index else float("nan")
        col.metric(label, num(value))
    show_table(table[[pick]])
    st.subheader("Latency means and percentiles (ms)")
    st.bar_chart(table.loc[[r for r in LATENCY_LABELS if r in table.index], [pick]])
    st.line_chart(latency_curves(summaries[pick]))
elif view == "side-by-side":
    cols = st.columns(max(1, len(table.columns)))
    for col, name in zip(cols, table.columns):
        with col:
            st.subheader(name)
            show_table(table[[name]])
            st.bar_chart(table.loc[[r for r in LATENCY_LABELS if r in table.index], [name]])
            st.line_chart(latency_curves(summaries[name]))
else:
    show_table(table)
    metric = st.selectbox("Bar chart metric", list(table.index))
    st.bar_chart(table.loc[[metric]].T)
    for key, label in LATENCIES:
        frame = percentile_frame({name: mean_percentiles(s, key) for name, s in summaries.items()})
        if not frame.empty:
            st.subheader(f"{label} percentiles (ms)")
            st.line_chart(frame)
