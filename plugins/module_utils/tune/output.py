"""Sweep outputs: sweep.json, trials.csv, report.html and best.yml (an `llm_models` snippet).

Kept out of reports/<run>/<model>/results.json on purpose: the benchmark index reads those
and would reject a sweep's schema. `index_entries` lets an index link sweeps instead.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
from html import escape
from typing import Any, Optional

from ansible_collections.llmops.platform.plugins.module_utils.charts import CHART_CSS
from ansible_collections.llmops.platform.plugins.module_utils.files import atomic_write
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import parallel_size

from .charts import objective_chart, pareto_chart, pareto_front

RESULTS_FILE = "sweep.json"
CSV_FILE = "trials.csv"
REPORT_FILE = "report.html"
BEST_FILE = "best.yml"
CSV_METRICS = ("e2e_ms", "ttft_ms", "tpot_ms", "requests_per_s", "output_tokens_per_s", "goodput_rps")

CSS = """body{margin:0;background:#f8fafc;color:#111827;font:14px/1.45 system-ui,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 48px}h1{font-size:24px;margin:0 0 4px}
h2{font-size:16px;margin:28px 0 10px}.sub{color:#6b7280}table{width:100%;border-collapse:collapse;
background:#fff;border:1px solid #e5e7eb}th,td{padding:6px 9px;border-bottom:1px solid #e5e7eb;
text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}th{background:#f1f5f9;font-size:12px}
td.l,th.l{text-align:left;white-space:normal}.ok{color:#047857;font-weight:600}.bad{color:#b91c1c;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:12px}
code{background:#f1f5f9;padding:1px 5px}pre{background:#fff;border:1px solid #e5e7eb;padding:10px;overflow:auto}
""" + CHART_CSS


_atomic = atomic_write


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.{digits}f}"
    return escape(str(v))


def ranked(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Feasible trials best first, then infeasible ones in run order."""
    trials = list(results["trials"]) + ([results["default"]] if results.get("default") else [])
    ok = [t for t in trials if t.get("value") is not None]
    ok.sort(key=lambda t: t["value"], reverse=results["direction"] == "maximize")
    return ok + [t for t in trials if t.get("value") is None]


def to_csv(results: dict[str, Any]) -> str:
    names = list(results["space"])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["trial", "status", "value", *names, *CSV_METRICS, "total_s", "overhead_share",
                     "failure_kind", "failure_reason", "repeat_values"])
    trials = ([results["default"]] if results.get("default") else []) + list(results["trials"])
    for t in trials:
        m = t.get("metrics") or {}
        f = t.get("failure") or {}
        writer.writerow([t["id"], t["status"], t.get("value"), *[t["params"].get(n, "") for n in names],
                         *[m.get(k) for k in CSV_METRICS], round(t["timings"]["total_s"], 2),
                         round(t["timings"]["overhead_share"], 3), f.get("kind", ""), f.get("reason", ""),
                         " ".join(f"{v:.6g}" for v in t.get("repeat_values") or [])])
    return buf.getvalue()


def overhead_summary(results: dict[str, Any]) -> dict[str, Any]:
    trials = [t for t in ([results.get("default")] + list(results["trials"])) if t and t["status"] == "ok"]
    if not trials:
        return {}
    total = sum(t["timings"]["total_s"] for t in trials)
    phases = ("start_s", "ready_s", "warmup_s", "bench_s", "stop_s")
    parts = {k: sum(t["timings"][k] for t in trials) / total for k in phases}
    return {"trials": len(trials), "mean_trial_s": total / len(trials),
            "overhead_share": 1.0 - parts["bench_s"], "shares": parts}


def best_snippet(results: dict[str, Any], model_name: str, source: str,
                 models: Optional[list[dict[str, Any]]] = None, gpus: int = 0) -> dict[str, Any]:
    """`llm_models` with the tuned entry: the whole list when given (so `-e @best.yml`, which
    replaces the list, keeps the other models), else just this model."""
    best = results.get("best")
    if not best:
        return {}
    args = {**results.get("engine_args", {}), **best["params"]}
    entry: dict[str, Any] = {"name": model_name, "source": source, "replicas": 1, "vllm_args": args}
    if gpus:
        entry["gpus"] = parallel_size(args)
    out = []
    replaced = False
    for model in models or []:
        if model.get("name") == model_name:
            merged = dict(model)
            merged["vllm_args"] = {**(model.get("vllm_args") or {}), **args}
            if gpus:
                merged["gpus"] = entry["gpus"]
            out.append(merged)
            replaced = True
        else:
            out.append(model)
    if not replaced:
        out.append(entry)
    return {"llm_models": out}


def _best_vs_default(results: dict[str, Any]) -> str:
    best, default = results.get("best"), results.get("default")
    if not best:
        return "<p>No feasible trial: nothing to compare.</p>"
    rows = []
    for key in CSV_METRICS:
        b = (best.get("metrics") or {}).get(key)
        d = (default.get("metrics") or {}).get(key) if default else None
        change = f"{(b / d - 1):+.1%}" if b is not None and d else "–"
        rows.append(f"<tr><td class=l>{key}</td><td>{_fmt(d, 2)}</td><td>{_fmt(b, 2)}</td><td>{change}</td></tr>")
    params = escape(json.dumps(best["params"], sort_keys=True))
    dflt = "not measured" if not default else (default["failure"]["reason"] if default.get("failure") else "measured")
    return (f"<p>Best trial <code>{escape(best['id'])}</code> {params}; default: {escape(str(dflt))}.</p>"
            "<table><tr><th class=l>metric (mean over points)</th><th>default</th><th>best</th><th>change</th></tr>"
            + "".join(rows) + "</table>")


def _headline(results: dict[str, Any]) -> str:
    verdict = results.get("verdict") or {}
    if not verdict.get("headline"):
        return ""
    cls = {"better": "ok", "no_change": "sub"}.get(verdict.get("kind"), "")
    repeats = results.get("repeats", 1)
    return (f'<p class="headline {cls}"><b>{escape(verdict["headline"])}</b></p>'
            f"<p class=sub>{repeats} benchmark run(s) per trial; the best trial replaces the default only when "
            "the difference of the means exceeds twice the larger run-to-run standard deviation and the ranges "
            "do not overlap (the routing comparison's rule).</p>")


def render_report(results: dict[str, Any]) -> str:
    names = list(results["space"])
    order = ranked(results)
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for rank, t in enumerate(order, 1):
        m = t.get("metrics") or {}
        status = ('<span class="ok">ok</span>' if t.get("value") is not None
                  else f'<span class="bad">{escape(t.get("status", "infeasible"))}</span>')
        reason = escape((t.get("failure") or {}).get("reason", "")[:200])
        cells = "".join(f"<td>{_fmt(t['params'].get(n, '(default)'))}</td>" for n in names)
        rows.append(f"<tr><td>{rank if t.get('value') is not None else '–'}</td>"
                    f"<td class=l>{escape(t['id'])}</td>{cells}"
                    f"<td>{_fmt(t.get('value'), 2)}</td><td>{_fmt(m.get('output_tokens_per_s'))}</td>"
                    f"<td>{_fmt(m.get('e2e_ms'))}</td><td>{_fmt(m.get('ttft_ms'))}</td><td>{status}</td>"
                    f"<td>{t['timings']['total_s']:.0f}s</td><td class=l>{reason}</td></tr>")
    ok = [t for t in order if t.get("value") is not None and (t.get("metrics") or {}).get("e2e_ms") is not None]
    pareto = pareto_chart([(t["metrics"]["output_tokens_per_s"] or 0.0, t["metrics"]["e2e_ms"]) for t in ok],
                          [t["id"] for t in ok])
    values = [t.get("value") for t in results["trials"]]
    over = overhead_summary(results)
    # A clock too short to split (fake or instant trials) gives no meaningful shares.
    over_text = "" if not over or over["mean_trial_s"] < 1.0 else (
        f"<p class=sub>Per-trial overhead (start, readiness, warm-up, clean-up): "
        f"{over['overhead_share']:.0%} of {over['mean_trial_s']:.0f}s mean trial time; "
        + ", ".join(f"{k[:-2]} {v:.0%}" for k, v in over["shares"].items()) + ".</p>")
    skipped = results.get("skipped_infeasible") or []
    skipped_html = "" if not skipped else (
        "<h2>Skipped as known-infeasible (never started)</h2><ul>"
        + "".join(f"<li><code>{escape(s['params'])}</code>: {escape(s['reason'])}</li>" for s in skipped) + "</ul>")
    failures = "".join(
        f"<h3>{escape(t['id'])}: {escape(t['failure']['kind'])}</h3><p>{escape(t['failure']['reason'])}</p>"
        f"<pre>{escape(t['failure'].get('log_tail', '')[-3000:])}</pre>"
        for t in order if t.get("failure"))
    body = (
        f"<h1>Sweep {escape(results['task_name'])}</h1>"
        f"<p class=sub>{escape(results['strategy'])} search · objective {escape(results['objective'])} "
        f"({escape(results['metric'])}, {escape(results['direction'])}) · {len(results['trials'])} trial(s) of a "
        f"{results['grid_size']}-point space · runtime {escape(results['runtime'].get('kind', '?'))} · "
        f"{escape(results['stop_reason'])} · {escape(results['started'])}</p>"
        + _headline(results) +
        "<h2>Best vs default</h2>" + _best_vs_default(results) + over_text +
        '<h2>Charts</h2><div class="charts">'
        + objective_chart(values, results["direction"], results["metric"]) + pareto + "</div>"
        "<h2>Trials ranked</h2><table><tr><th>rank</th><th class=l>trial</th>" + head +
        "<th>objective</th><th>out tok/s</th><th>E2E ms</th><th>TTFT ms</th><th>status</th><th>time</th>"
        "<th class=l>reason</th></tr>" + "".join(rows) + "</table>" + skipped_html +
        ("<h2>Failures (log tails)</h2>" + failures if failures else "") +
        f"<p class=sub>Files: <a href=\"{RESULTS_FILE}\">{RESULTS_FILE}</a> · <a href=\"{CSV_FILE}\">{CSV_FILE}</a>"
        f" · <a href=\"{BEST_FILE}\">{BEST_FILE}</a></p>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Sweep {escape(results['task_name'])}"
            f"</title><style>{CSS}</style></head><body><main>{body}</main></body></html>\n")


def write_outputs(results: dict[str, Any], output_dir: str, snippet: dict[str, Any]) -> dict[str, str]:
    import yaml

    os.makedirs(output_dir, exist_ok=True)
    results = dict(results, overhead=overhead_summary(results),
                   pareto=[t["id"] for t in _pareto_trials(results)])
    paths = {k: os.path.join(output_dir, f) for k, f in
             (("results", RESULTS_FILE), ("csv", CSV_FILE), ("report", REPORT_FILE), ("best_vars", BEST_FILE))}
    _atomic(paths["results"], json.dumps(results, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")
    _atomic(paths["csv"], to_csv(results))
    _atomic(paths["report"], render_report(results))
    best_id = results.get("best", {}) and results["best"]["id"]
    header = ("# Best configuration from sweep %s (%s, %s).\n"
              "# Deploy: ansible-playbook site.yml --tags serving -e @%s\n"
              % (results["task_name"], results["objective"], best_id, BEST_FILE))
    verdict = results.get("verdict") or {}
    if verdict.get("kind") == "no_change":
        header += ("# No change beyond run-to-run noise: this keeps the DEFAULT configuration (the model's\n"
                   "# vllm_args and the task's engine_args, no tuned flags).\n")
    if verdict.get("headline"):
        header += "# Verdict: %s\n" % verdict["headline"].replace("\n", " ")
    body = yaml.safe_dump(snippet, sort_keys=False) if snippet else "# no feasible trial\n"
    _atomic(paths["best_vars"], header + body)
    return paths


def _pareto_trials(results: dict[str, Any]) -> list[dict[str, Any]]:
    ok = [t for t in results["trials"]
          if t.get("value") is not None and (t.get("metrics") or {}).get("e2e_ms") is not None]
    front = pareto_front([(t["metrics"]["output_tokens_per_s"] or 0.0, t["metrics"]["e2e_ms"]) for t in ok])
    return [ok[i] for i in front]


def index_entries(report_root: str) -> list[dict[str, Any]]:
    """Sweeps under <report_root>/sweeps/<task>/ for a report index: newest first."""
    entries = []
    for path in glob.glob(os.path.join(report_root, "sweeps", "*", RESULTS_FILE)):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        best = data.get("best") or {}
        verdict = data.get("verdict") or {}
        entries.append({"task": data.get("task_name"), "started": data.get("started", ""),
                        "link": os.path.relpath(os.path.join(os.path.dirname(path), REPORT_FILE), report_root),
                        "strategy": data.get("strategy"), "objective": data.get("objective"),
                        "metric": data.get("metric") or verdict.get("metric") or "",
                        "trials": len(data.get("trials", [])), "best_params": best.get("params"),
                        "best_value": best.get("value"), "verdict": verdict})
    return sorted(entries, key=lambda e: e["started"], reverse=True)


def _index_verdict(verdict: dict[str, Any]) -> str:
    """The sweep's noise-aware outcome in a few words (the report has the whole sentence)."""
    if not verdict:
        return "-"
    if verdict.get("exceeds_noise"):
        return f"<b>better beyond noise</b> ({float(verdict.get('diff_pct') or 0.0):+.1f}%)"
    return "no change beyond noise"


def _index_params(params: Any) -> str:
    if not params:
        return "the default"
    return escape(", ".join(f"{k}={v}" for k, v in sorted(params.items())) if isinstance(params, dict)
                  else json.dumps(params, sort_keys=True))


def render_index_section(report_root: str) -> str:
    """HTML fragment (a heading and a table) for reports/index.html; empty when no sweeps."""
    entries = index_entries(report_root)
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td><a href=\"{escape(e['link'])}\">{escape(str(e['task']))}</a></td>"
        f"<td>{escape(str(e['strategy']))}</td>"
        f"<td>{escape(str(e['objective']))}</td><td>{e['trials']}</td><td>{_index_verdict(e['verdict'])}</td>"
        f"<td>{_index_params(e['best_params'])}</td>"
        f"<td>{_fmt(e['best_value'], 2)} <small>{escape(str(e['metric']))}</small></td>"
        f"<td>{escape(e['started'][:16].replace('T', ' '))}</td></tr>"
        for e in entries)
    return ("<h2>Parameter sweeps</h2><table><thead><tr><th>sweep</th><th>strategy</th><th>objective</th>"
            "<th>trials</th><th>verdict</th><th>best parameters</th><th>best value</th><th>started (UTC)</th>"
            "</tr></thead><tbody>" + rows + "</tbody></table>")
