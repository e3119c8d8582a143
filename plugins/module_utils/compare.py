"""Baseline-vs-managed comparison over benchmark results (playbooks/compare.yml).

Layout read: <root>/<arm>/run<k>/<model>/results.json (the benchmark engine's files), and
prefix_cache.json next to it when the replicas' prefix-cache counters were scraped around the
run (module_utils/prefix_cache.py): its hit rate is one more metric. Arms beyond the managed
one (`others`, e.g. a prefix_aware arm) are each compared with the baseline the same way.
Each metric is compared on its mean over repeated runs; the difference "exceeds noise" only
when it is larger than twice the larger run-to-run standard deviation AND the two arms'
ranges do not overlap, so a single lucky run cannot decide the verdict. Pure Python.
"""
from __future__ import annotations

import html
import json
import os
import statistics
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.charts import CHART_CSS
from ansible_collections.llmops.platform.plugins.module_utils.compare_plots import percentile_series, render_plots

# (dotted path in the summary, label, True when higher is better)
METRICS: list[tuple[str, str, bool]] = [
    ("throughput.requests_per_s", "requests/s", True),
    ("throughput.output_tokens_per_s", "output tokens/s", True),
    ("requests.success_rate", "success rate", True),
    # Only with prefix_cache.json (replicas scraped around the run); next to TTFT, which it shortens.
    ("prefix_cache.hit_rate_pct", "prefix-cache hit rate (%)", True),
] + [(f"{m}_ms.{s}", f"{m.upper()} {s} (ms)", False)
     for m in ("ttft", "itl", "e2e") for s in ("mean", "median", "p95", "p99")]


def _get(summary: dict, path: str) -> float | None:
    value: Any = summary
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_runs(root: str) -> dict[str, dict[str, list[dict]]]:
    """{arm: {model: [summary per repeat, in run order]}}."""
    runs: dict[str, dict[str, list[dict]]] = {}
    for arm in sorted(os.listdir(root)):
        arm_dir = os.path.join(root, arm)
        if not os.path.isdir(arm_dir):
            continue
        for rep in sorted(os.listdir(arm_dir), key=lambda r: (len(r), r)):
            rep_dir = os.path.join(arm_dir, rep)
            if not os.path.isdir(rep_dir):
                continue
            for model in sorted(os.listdir(rep_dir)):
                path = os.path.join(rep_dir, model, "results.json")
                if os.path.isfile(path):
                    with open(path, encoding="utf-8") as handle:
                        summary = json.load(handle)["summary"]
                    cache = os.path.join(rep_dir, model, "prefix_cache.json")
                    if os.path.isfile(cache):
                        with open(cache, encoding="utf-8") as handle:
                            summary = {**summary, "prefix_cache": json.load(handle)}
                    runs.setdefault(arm, {}).setdefault(model, []).append(summary)
    return runs


def _stats(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else None}


def judge(baseline: list[float], managed: list[float], higher: bool) -> dict[str, Any]:
    """One metric, repeat values of both arms: is managed better or worse beyond run-to-run noise?

    exceeds_noise is None with a single run on either side (no noise estimate), else True only
    when |diff of means| > 2 x the larger standard deviation AND the ranges do not overlap.
    Also used by the tuner (tune/noise.py) for "best trial vs the default configuration"."""
    sb, sm = _stats(baseline), _stats(managed)
    diff = sm["mean"] - sb["mean"]
    noise = (max(s for s in (sb["stdev"], sm["stdev"]) if s is not None)
             if len(baseline) > 1 and len(managed) > 1 else None)
    separated = sm["min"] > sb["max"] or sm["max"] < sb["min"]
    exceeds = None if noise is None else bool(abs(diff) > 2 * noise and separated)
    return {"higher_is_better": higher, "baseline": sb, "managed": sm, "diff": diff,
            "diff_pct": (100 * diff / sb["mean"]) if sb["mean"] else None,
            "managed_better": (diff > 0) == higher and diff != 0,
            "noise": noise, "exceeds_noise": exceeds, "separated": separated}


def compare(runs: dict[str, dict[str, list[dict]]], baseline: str, managed: str,
            side: str = "managed") -> dict[str, Any]:
    """`side`: what the verdicts call the managed arm (another arm's name for `others`)."""
    if baseline not in runs or managed not in runs:
        raise ValueError(f"need results for arms {baseline!r} and {managed!r}, found {sorted(runs)}")
    models = sorted(set(runs[baseline]) & set(runs[managed]))
    out: dict[str, Any] = {"baseline": baseline, "managed": managed, "models": {}}
    for model in models:
        rows = []
        for path, label, higher in METRICS:
            b = [v for v in (_get(s, path) for s in runs[baseline][model]) if v is not None]
            m = [v for v in (_get(s, path) for s in runs[managed][model]) if v is not None]
            if not b or not m:
                continue
            rows.append({"metric": path, "label": label, **judge(b, m, higher)})
        better = [r["label"] for r in rows if r["exceeds_noise"] and r["managed_better"]]
        worse = [r["label"] for r in rows if r["exceeds_noise"] and not r["managed_better"]]
        out["models"][model] = {"repeats": {baseline: len(runs[baseline][model]), managed: len(runs[managed][model])},
                                "metrics": rows, "managed_better": better, "managed_worse": worse,
                                "verdict": _verdict(better, worse, rows, side)}
    return out


def _verdict(better: list[str], worse: list[str], rows: list[dict], side: str = "managed") -> str:
    if rows and all(r["exceeds_noise"] is None for r in rows):
        return "one run per arm: no noise estimate, repeat runs (compare_repeats >= 2) to decide"
    if better and not worse:
        return f"{side} better beyond noise on {len(better)} metric(s): {', '.join(better)}"
    if worse and not better:
        return f"{side} WORSE beyond noise on {len(worse)} metric(s): {', '.join(worse)}"
    if better and worse:
        return f"mixed: better on {', '.join(better)}; worse on {', '.join(worse)}"
    return "no difference beyond run-to-run noise"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_markdown(result: dict[str, Any], notes: list[str] | None = None) -> str:
    b, m = result["baseline"], result["managed"]
    lines = [f"# {b} vs {m}", ""] + [f"- {n}" for n in notes or []] + [""]
    lines += _markdown_models(result)
    for other in (result.get("others") or {}).values():
        lines += [f"# {other['baseline']} vs {other['managed']}", ""] + _markdown_models(other)
    return "\n".join(lines)


def _markdown_models(result: dict[str, Any]) -> list[str]:
    b, m = result["baseline"], result["managed"]
    lines: list[str] = []
    for model, data in result["models"].items():
        lines += [f"## {model} ({data['repeats'][b]} x {b}, {data['repeats'][m]} x {m})", "",
                  f"**{data['verdict']}**", "",
                  f"| metric | {b} mean [min-max] | {m} mean [min-max] | diff | diff % | noise (sd) | beyond noise |",
                  "|---|---|---|---|---|---|---|"]
        for r in data["metrics"]:
            verdict = "yes, " + ("better" if r["managed_better"] else "worse")
            flag = {None: "n/a", True: verdict, False: "no"}[r["exceeds_noise"]]
            lines.append(f"| {r['label']} | {_fmt(r['baseline']['mean'])} [{_fmt(r['baseline']['min'])}-"
                         f"{_fmt(r['baseline']['max'])}] | {_fmt(r['managed']['mean'])} [{_fmt(r['managed']['min'])}-"
                         f"{_fmt(r['managed']['max'])}] | {r['diff']:+.4g} | "
                         f"{'-' if r['diff_pct'] is None else format(r['diff_pct'], '+.1f')} | "
                         f"{_fmt(r['noise'])} | {flag} |")
        lines.append("")
    return lines


def render_html(result: dict[str, Any], notes: list[str] | None = None) -> str:
    b, m = result["baseline"], result["managed"]
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(b)} vs {html.escape(m)}</title>",
             "<style>body{font:14px system-ui;margin:2em}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
             "text-align:right}td:first-child,th:first-child{text-align:left}.b{color:#070}.w{color:#b00}"
             ".bar{display:inline-block;height:9px;background:#89a}"
             ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px;max-width:1180px}"
             f"{CHART_CSS}</style>",
             f"<h1>{html.escape(b)} vs {html.escape(m)}</h1><ul>"]
    parts += [f"<li>{html.escape(n)}</li>" for n in notes or []]
    parts.append("</ul>")
    parts += _html_models(result, result.get("percentiles") or {})
    for other in (result.get("others") or {}).values():
        parts.append(f"<h1>{html.escape(other['baseline'])} vs {html.escape(other['managed'])}</h1>")
        parts += _html_models(other, {})  # the overlays above already hold every arm
    return "\n".join(parts) + "\n"


def _html_models(result: dict[str, Any], percentiles: dict[str, Any]) -> list[str]:
    b, m = result["baseline"], result["managed"]
    parts: list[str] = []
    for model, data in result["models"].items():
        parts.append(f"<h2>{html.escape(model)}</h2><p><b>{html.escape(data['verdict'])}</b></p><table>"
                     f"<tr><th>metric</th><th>{html.escape(b)}</th><th>{html.escape(m)}</th><th>diff %</th>"
                     "<th>noise (sd)</th><th>beyond noise</th></tr>")
        for r in data["metrics"]:
            top = max(r["baseline"]["max"], r["managed"]["max"]) or 1.0
            cls = "" if not r["exceeds_noise"] else (" class=b" if r["managed_better"] else " class=w")
            beyond = {None: "n/a", True: "yes", False: "no"}[r["exceeds_noise"]]

            def cell(s: dict, top: float = top) -> str:
                return (f"<td>{_fmt(s['mean'])} <span class=bar style='width:{int(80 * s['mean'] / top)}px'></span>"
                        f"<br><small>{_fmt(s['min'])}-{_fmt(s['max'])}</small></td>")
            parts.append(f"<tr{cls}><td>{html.escape(r['label'])}</td>{cell(r['baseline'])}{cell(r['managed'])}"
                         f"<td>{'-' if r['diff_pct'] is None else format(r['diff_pct'], '+.1f')}</td>"
                         f"<td>{_fmt(r['noise'])}</td><td>{beyond}</td></tr>")
        parts.append("</table>")
        # Overlay: every repeat of both arms over the latency percentiles (the spread is visible).
        parts.append(render_plots(percentiles, model))
    return parts


def write_comparison(root: str, baseline: str, managed: str, notes: list[str] | None = None,
                     others: list[str] | None = None) -> dict[str, Any]:
    """`others`: further arms, each compared with the baseline too (result["others"][arm]);
    without them the result and the pages are exactly the two-arm comparison."""
    runs = load_runs(root)
    result = compare(runs, baseline, managed)
    others = [arm for arm in others or [] if arm not in (baseline, managed)]
    if others:
        result["others"] = {arm: compare(runs, baseline, arm, side=arm) for arm in others}
    result["notes"] = list(notes or [])
    result["percentiles"] = percentile_series(runs, [baseline, managed, *others])
    paths = {"json": os.path.join(root, "comparison.json"), "markdown": os.path.join(root, "comparison.md"),
             "html": os.path.join(root, "comparison.html")}
    with open(paths["json"], "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    with open(paths["markdown"], "w", encoding="utf-8") as handle:
        handle.write(render_markdown(result, notes))
    with open(paths["html"], "w", encoding="utf-8") as handle:
        handle.write(render_html(result, notes))
    index = write_index(os.path.dirname(os.path.abspath(root)))
    return {"comparison": result, "paths": {**paths, "index": index}}


def render_index_section(report_root: str) -> str:
    """HTML fragment for reports/index.html: a link per comparison under <report_root>/compare/."""
    compare_dir = os.path.join(report_root, "compare")
    runs = sorted((r for r in os.listdir(compare_dir)
                   if os.path.isfile(os.path.join(compare_dir, r, "comparison.json")))
                  if os.path.isdir(compare_dir) else [], reverse=True)
    if not runs:
        return ""
    items = "".join(f"<li><a href='compare/{html.escape(r)}/comparison.html'>{html.escape(r)}</a></li>" for r in runs)
    return f"<h2>Routing comparisons</h2><p><a href='compare/index.html'>all comparisons</a></p><ul>{items}</ul>"


def write_index(compare_dir: str) -> str:
    """<reports>/compare/index.html: every comparison, newest first, with its verdicts."""
    rows = []
    for run in sorted(os.listdir(compare_dir), reverse=True):
        path = os.path.join(compare_dir, run, "comparison.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        verdicts = "<br>".join(f"{html.escape(m)}: {html.escape(d['verdict'])}" for m, d in data["models"].items())
        for arm, other in (data.get("others") or {}).items():
            verdicts += "".join(f"<br>{html.escape(arm)}, {html.escape(m)}: {html.escape(d['verdict'])}"
                                for m, d in other["models"].items())
        rows.append(f"<tr><td><a href='{html.escape(run)}/comparison.html'>{html.escape(run)}</a></td>"
                    f"<td>{verdicts}</td></tr>")
    page = ("<!doctype html><meta charset=utf-8><title>Routing comparisons</title>"
            "<style>body{font:14px system-ui;margin:2em}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
            "text-align:left;vertical-align:top}</style><h1>Routing comparisons (baseline vs managed)</h1>"
            "<table><tr><th>run</th><th>verdict per model</th></tr>" + "".join(rows) + "</table>\n")
    index = os.path.join(compare_dir, "index.html")
    with open(index, "w", encoding="utf-8") as handle:
        handle.write(page)
    return index
