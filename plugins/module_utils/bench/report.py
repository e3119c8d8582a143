"""Single-file HTML reports: one per run, plus reports/index.html across runs.

No external JS/CSS/fonts: the pages must open from disk on a closed network. Output is
deterministic for the same inputs (no "generated at"), so re-rendering an unchanged index
is a no-op for Ansible.
"""
from __future__ import annotations

import glob
import json
import os
import statistics
from html import escape
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.llmops.platform.plugins.module_utils.charts import (
    CHART_CSS,
    Axis,
    Series,
    cdf_chart,
    histogram_chart,
    note,
    percent,
    timeline_chart,
    xy_chart,
)

from .promseries import replicas
from .results import REQUESTS_FILE, RESULTS_FILE, STEPS_CSV, load_results, write_text

REPORT_FILE = "report.html"
INDEX_FILE = "index.html"

CSS = """
:root{--fg:#111827;--mut:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--ok:#047857;
--okbg:#d1fae5;--bad:#b91c1c;--badbg:#fee2e2;--acc:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}
.sub{color:var(--mut);margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card .k{color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .u{color:var(--mut);font-size:12px;margin-left:3px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);
border-radius:10px;overflow:hidden}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;
font-variant-numeric:tabular-nums}
th{background:#f1f5f9;font-size:12px;color:#374151;text-transform:uppercase;letter-spacing:.03em}
th:first-child,td:first-child,td.l,th.l{text-align:left}
th.w,td.w{white-space:normal}.wide{overflow-x:auto}
tr:last-child td{border-bottom:0}tbody tr:hover{background:#f9fafb}
a{color:var(--acc);text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.ok{background:var(--okbg);color:var(--ok)}.bad{background:var(--badbg);color:var(--bad)}
.reasons{background:var(--badbg);color:var(--bad);border-radius:10px;padding:10px 14px;
margin:12px 0}
.info{background:#eff6ff;color:#1e3a8a;border-radius:10px;padding:10px 14px;margin:12px 0}
nav{font-size:13px;margin:0 0 10px}nav a{margin-right:14px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:12px}
code{background:#f1f5f9;padding:1px 5px;border-radius:5px}
footer{color:var(--mut);font-size:12px;margin-top:28px}
""" + CHART_CSS

_LATENCIES = (("TTFT", "ttft_ms"), ("ITL", "itl_ms"), ("TPOT", "tpot_ms"), ("E2E", "e2e_ms"))
_STAT_COLS = (("n", "n"), ("mean", "mean"), ("median", "median"), ("p90", "p90"),
              ("p95", "p95"), ("p99", "p99"), ("p99.9", "p999"), ("min", "min"),
              ("max", "max"), ("stdev", "stdev"))


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.{digits}f}"


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1%}"


def _badge(valid: Any) -> str:
    return ('<span class="badge ok">valid</span>' if valid
            else '<span class="badge bad">invalid</span>')


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def _card(label: str, value: str, unit: str = "") -> str:
    unit_html = f'<span class="u">{escape(unit)}</span>' if unit else ""
    return (f'<div class="card"><div class="k">{escape(label)}</div>'
            f'<div class="v">{escape(value)}{unit_html}</div></div>')


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left_cols: int = 1) -> str:
    """Cells in `rows` are trusted HTML (callers escape); header labels are escaped here.

    The first `left_cols` columns hold text (left-aligned); the rest are numbers.
    """
    def cls(i: int) -> str:
        return ' class="l"' if i < left_cols else ""
    th = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    # JSON spelling (true, {"temperature": 0.0}) matches what users write in playbooks.
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _ms_values(results: Dict[str, Any], key: str) -> List[float]:
    ok = [r for r in results.get("records", []) if not r.get("error_class")]
    if key == "itl_s":
        return [g * 1000.0 for r in ok for g in r.get("itl_s") or []]
    return [r[key] * 1000.0 for r in ok if r.get(key) is not None]


# What each error class means, shown under the errors table.
ERROR_MEANINGS = {
    "connection_refused": "nothing listened on the server's port (server down or not started)",
    "connection_reset": "the server dropped the connection before its response began",
    "stream_cut": "the server cut a stream it had started (killed, crashed, or no [DONE])",
    "timeout": "no complete response within request_timeout_s",
    "invalid_response": "an unparseable chunk or an error object in the stream",
    "client_error": "a failure on the client's side of the socket",
}
MIN_GAUGE_SAMPLES = 3


def _ms_bound(stats: Dict[str, Any], key: str, digits: int = 1) -> str:
    """A server quantile; one that lies in the first or the open last histogram bucket is
    a bound ("<= 300"), not a number."""
    bound = (stats.get("bounds") or {}).get(key)
    value = _num(stats.get(key), digits)
    return f"{bound} {value}" if bound and stats.get(key) is not None else value


def _nav(links: Sequence[Tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="{escape(h)}">{escape(t)}</a>' for t, h in links) + "</nav>"


def _load_label(config: Dict[str, Any]) -> str:
    profile = config.get("profile", "concurrency")
    if profile == "concurrency":
        levels = config.get("concurrency", "?")
        return "concurrency " + (", ".join(str(v) for v in levels) if isinstance(levels, list)
                                 else str(levels))
    rate = config.get("rate")
    if rate is None:
        return str(profile)
    rates = rate if isinstance(rate, list) else [rate]
    return f"{profile} " + ", ".join(f"{r:g}" for r in rates) + " req/s"


def _reasons(summary: Dict[str, Any]) -> str:
    reasons = summary.get("invalid_reasons") or []
    if not reasons:
        return ""
    items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    return f'<div class="reasons"><strong>Run is invalid</strong><ul>{items}</ul></div>'


def render_run_report(results: Dict[str, Any], index_href: Optional[str] = None) -> str:
    summary = results.get("summary", {})
    config = results.get("config", {})
    req = summary.get("requests", {})
    thr = summary.get("throughput", {})
    model = str(config.get("model", "?"))
    label = config.get("label")
    links = ([("← all runs", index_href)] if index_href else []) + [
        (RESULTS_FILE, RESULTS_FILE), (REQUESTS_FILE, REQUESTS_FILE)]
    if summary.get("steps"):
        links.append((STEPS_CSV, STEPS_CSV))
    streams = summary.get("streams") or {}
    itl_median = summary.get("itl_ms", {}).get("median")
    steps = summary.get("steps") or []
    head_note = (f" · headline: {escape(str(steps[summary['headline_step']].get('label')))} "
                 "(highest valid throughput)"
                 if len(steps) > 1 and summary.get("headline_step") is not None else "")
    body = [_nav(links),
            f"<h1>{escape(model)}{' · ' + escape(str(label)) if label else ''} "
            f"{_badge(summary.get('valid'))}</h1>",
            f'<p class="sub">{escape(str(results.get("started", "")))} · '
            f'<code>{escape(str(config.get("url", "")))}</code> · '
            f'{escape(_load_label(config))} · {escape(str(req.get("total", 0)))} '
            f'requests{head_note}</p>', _reasons(summary), _notes(summary), '<div class="cards">',
            _card("Requests/s", _num(thr.get("requests_per_s"), 2)),
            _card("Output tokens/s", _num(thr.get("output_tokens_per_s"))),
            _card("Success", _pct(req.get("success_rate"))),
            _card("TTFT p50", _num(summary.get("ttft_ms", {}).get("median")), "ms"),
            _card("ITL p50", _num(itl_median) if itl_median is not None else "n/a",
                  "ms" if itl_median is not None else ""),
            _card("E2E p99", _num(summary.get("e2e_ms", {}).get("p99")), "ms"), "</div>"]
    if streams.get("itl_unavailable"):
        body.append(f'<div class="info">{escape(streams["itl_unavailable"])}. TPOT (from '
                    "first token to last) is still measured; ITL is left out of comparisons "
                    "for them.</div>")

    rows = []
    for label, key in _LATENCIES:
        stats = summary.get(key, {})
        ci = stats.get("ci95")
        ci_text = f"{_num(ci[0])} – {_num(ci[1])}" if ci else "–"
        rows.append([escape(label)] + [_num(stats.get(k)) for _title, k in _STAT_COLS[:2]]
                    + [ci_text] + [_num(stats.get(k)) for _title, k in _STAT_COLS[2:]])
    body += ["<h2>Latency (ms)</h2>",
             _table(["metric", "n", "mean", "mean 95% CI"] + [c for c, _key in _STAT_COLS[2:]], rows)]

    body += ['<h2>Distributions</h2><div class="charts">',
             cdf_chart("Latency CDF", [("TTFT", _ms_values(results, "ttft_s")),
                                       ("E2E", _ms_values(results, "e2e_s"))]),
             cdf_chart("Inter-token latency CDF", [("ITL", _ms_values(results, "itl_s"))]),
             histogram_chart("Inter-token latency", _ms_values(results, "itl_s")), "</div>"]
    body += _load_section(results)
    body += _server_section(results)

    errors = req.get("error_classes") or {}
    if errors:
        samples: Dict[str, str] = {}
        for r in results.get("records", []):
            if r.get("error_class") and r["error_class"] not in samples:
                samples[r["error_class"]] = str(r.get("error") or "")
        body += ["<h2>Errors</h2>", _table(
            ["class", "count", "meaning", "first message"],
            [[escape(k), _num(v), escape(ERROR_MEANINGS.get(k, "the server answered with this "
                                                            "HTTP status" if k.startswith("http_")
                                                            else "")),
              escape(samples.get(k, "")[:160])] for k, v in errors.items()],
            left_cols=4)]

    tokens = summary.get("tokens", {})
    facts = [("succeeded / failed", f"{_num(req.get('succeeded'))} / {_num(req.get('failed'))}"),
             ("not sent", _num(req.get("not_sent"))),
             ("duration", f"{_num(summary.get('duration_s'), 2)} s"),
             ("input / output tokens", f"{_num(tokens.get('input_total'))} / "
                                       f"{_num(tokens.get('output_total'))}"),
             ("total tokens/s", _num(thr.get("total_tokens_per_s")))]
    facts += [(k, _text(v)) for k, v in sorted(config.items()) if k != "url"]
    body += ["<h2>Run</h2>", _table(["field", "value"],
                                    [[escape(k), escape(v)] for k, v in facts], left_cols=2)]
    body += _args_section(results)
    versions = results.get("versions", {})
    body.append("<footer>llmops.platform benchmark · " + escape(
        " · ".join(f"{k} {v}" for k, v in sorted(versions.items()))) +
        f" · schema {escape(str(results.get('schema_version')))}</footer>")
    return _page(f"{model} benchmark", "".join(body))


def _notes(summary: Dict[str, Any]) -> str:
    notes = summary.get("notes") or []
    if not notes:
        return ""
    return '<div class="info">' + "<br>".join(escape(n) for n in notes) + "</div>"


def _load_section(results: Dict[str, Any]) -> List[str]:
    summary = results.get("summary", {})
    steps = summary.get("steps") or []
    config = results.get("config", {})
    out: List[str] = []
    if steps:
        rows = [[escape(str(st.get("label"))), _num(st.get("rate"), 2),
                 _num(st.get("achieved_rate"), 2), _num(st.get("requests_per_s"), 2),
                 _num(st.get("output_tokens_per_s")), _num(st["ttft_ms"].get("median")),
                 _num(st["ttft_ms"].get("p99")), _num(st["e2e_ms"].get("median")),
                 _num(st["e2e_ms"].get("p99")), _num(st.get("dispatch_lag_p99_ms"), 2),
                 _pct(st.get("goodput_share")), _badge(st.get("valid"))] for st in steps]
        out += ["<h2>Load steps</h2>", _table(
            ["step", "target/s", "achieved/s", "req/s", "out tok/s", "TTFT p50", "TTFT p99",
             "E2E p50", "E2E p99", "lag p99", "goodput", "valid"], rows)]
    x_of = [(st.get("requests_per_s") or 0.0, st) for st in steps]
    slo = config.get("slo_e2e_ms")
    throughput_points = [(st.get("output_tokens_per_s") or 0.0, st["e2e_ms"]["p99"])
                         for st in steps if st["e2e_ms"].get("p99") is not None]
    out += ['<h2>Latency under load</h2><div class="charts">',
            xy_chart("TTFT and E2E vs load", [
                Series(f"{name} {q}", [(x, st[key][q]) for x, st in x_of if st[key].get(q) is not None])
                for name, key in (("TTFT", "ttft_ms"), ("E2E", "e2e_ms"))
                for q in ("median", "p99")], Axis("achieved requests/s"), Axis("latency (ms)")),
            xy_chart("Throughput vs latency", [Series("E2E p99", throughput_points)],
                     Axis("output tokens/s"), Axis("E2E p99 (ms)"),
                     hline=(f"SLO {slo:g} ms", slo) if slo else None)]
    recs = results.get("records", [])
    if recs:
        origin = min(r.get("send_s", 0.0) for r in recs)
        rows_t = []
        for r in sorted(recs, key=lambda r: r.get("send_s", 0.0)):
            start = r.get("send_s", 0.0) - origin
            end = (r.get("end_s") if r.get("end_s") is not None else r.get("send_s", 0.0)) - origin
            first = (start + (r.get("queue_s") or 0.0) + r["ttft_s"]
                     if r.get("ttft_s") is not None else None)
            rows_t.append((start, max(end, start), first, not r.get("error_class")))
        out.append(timeline_chart("Per-request timeline (blue: in flight, green: first token, "
                                  "red: failed)", rows_t))
    lags = [r.get("dispatch_lag_s", 0.0) * 1000.0 for r in recs]
    queue = [r["queue_s"] * 1000.0 for r in recs if r.get("queue_s") is not None]
    out.append(cdf_chart("Sender: dispatch lag and client queue time",
                         [("dispatch lag", lags), ("queue", queue)]))
    out.append("</div>")
    return out


def _server_section(results: Dict[str, Any]) -> List[str]:
    summary = results.get("summary", {})
    server = summary.get("server")
    out: List[str] = []
    if server:
        rows = []
        for label, key in (("TTFT", "ttft_ms"), ("E2E", "e2e_ms"), ("ITL", "itl_ms"),
                           ("queue", "queue_ms")):
            srv = server.get(key) or {}
            cli = summary.get(key) or {}
            if not srv and not cli:
                continue
            rows.append([escape(label), _num(cli.get("mean"), 2), _num(srv.get("mean"), 2),
                         _num(cli.get("median"), 2), escape(_ms_bound(srv, "median", 2)),
                         _num(cli.get("p99"), 2), escape(_ms_bound(srv, "p99", 2)),
                         _num(cli.get("n")), _num(srv.get("count"))])
        rows.append(["output tokens", _num((summary.get("tokens") or {}).get("output_total")),
                     _num(server.get("output_tokens")), "", "", "", "", "", ""])
        out += ["<h2>Client vs server (/metrics deltas)</h2>",
                "<p class=\"sub\">Client queue time is not part of client TTFT/E2E. Server "
                "percentiles are interpolated inside histogram buckets; one that falls in the "
                "first bucket (or the open last one) can only be given as a bound (&lt;= or "
                "&gt;=).</p>",
                _table(["metric", "client mean", "server mean", "client p50", "server p50",
                        "client p99", "server p99", "client n", "server n"], rows)]
        gaps = [g for g in summary.get("server_gap") or [] if g.get("expected")]
        if gaps:
            out.append('<div class="info">Frontend gap (expected): ' + "; ".join(
                f"{escape(g['metric'].replace('_ms', '').upper())} client mean exceeds the "
                f"server's by {g['gap_ms']:.1f} ms"
                + (f" ({g['gap_share']:.0%})" if g.get("gap_share") is not None else "")
                for g in gaps) + ". vLLM's histograms start after the HTTP frontend has parsed "
                "and tokenised a request and stop before the last SSE write, so the client "
                "sees that work on top.</div>")
        flags = summary.get("server_disagreements") or []
        if flags:
            out.append('<div class="reasons"><strong>Client and server disagree</strong><ul>'
                       + "".join(f"<li>{escape(f)}</li>" for f in flags) + "</ul></div>")
    # Both views: Prometheus has every replica at its scrape interval; the engine's own samples
    # have the base URL's server about 20 times a step, which catches short spikes a 5 s scrape misses.
    out += prometheus_section(results)
    out += gauge_section(results)
    return out


def prometheus_section(results: Dict[str, Any]) -> List[str]:
    """Server series of every replica from Prometheus for the run's window, next to the
    client's TTFT over the same seconds; [] without a Prometheus URL, a sentence when
    Prometheus did not answer, had no series, or the run fits in one of its points."""
    prom = results.get("prometheus")
    if not prom:
        return []
    head = "<h2>Server series from Prometheus (every replica)</h2>"
    url = str(prom.get("url", ""))
    model = str((results.get("config") or {}).get("model", ""))
    series = prom.get("series") or {}
    shown = replicas(prom)
    if prom.get("error") or not shown:
        why = (f"did not answer: {prom['error']}" if prom.get("error") else
               f'had no vLLM series with model_name="{model}" for the run\'s window (is it scraping the replicas?)')
        return [head, f'<div class="info">{escape(f"Prometheus at {url} {why}")}; the gauges below are the '
                      "benchmark's own samples of the base URL's /metrics.</div>"]

    def chart(kind: str, title: str, axis: Axis) -> str:
        rows = [Series(r["name"], [tuple(p) for p in r["points"]], markers=False) for r in series.get(kind, [])]
        return xy_chart(title, rows, Axis("seconds since start"), axis) if rows else note(f"{title}: no series")

    step_s = float(prom.get("step_s") or 1.0)
    longest = max(len(row["points"]) for rows in series.values() for row in rows)
    if longest < 2:  # one point per replica draws nothing: say so, keep the engine's samples
        span = float(prom.get("end", 0.0)) - float(prom.get("start", 0.0))
        why = (f"Prometheus at {url}: the run ({span:.1f} s) fits in one of its points ({step_s:g} s apart), "
               "too short to draw per replica")
        return [head, f'<div class="info">{escape(why)}; the gauges below are the '
                      "benchmark's own samples of the base URL's /metrics.</div>"]
    ttft = _binned_ttft(results.get("records", []), step_s)
    fresh = "" if prom.get("fresh", True) else " The last scrape after the run had not landed; its end may be missing."
    return [head, f'<p class="sub">{escape(url)}, one point every {step_s:g} s (each at the newest scrape);'
                  f" replicas: {escape(', '.join(shown))}.{escape(fresh)}</p>",
            '<div class="charts">',
            chart("running", "Requests running per replica", Axis("requests", integer=True)),
            chart("waiting", "Requests waiting per replica", Axis("requests", integer=True)),
            chart("kv_cache", "KV cache use per replica", Axis("share of KV cache", fmt=percent, hi=1.0)),
            # The client's TTFT beside them when it spans two intervals (one would be a lone dot).
            xy_chart("Client TTFT over the run (median per interval, by first token's arrival)",
                     [Series("TTFT p50", ttft, markers=False)], Axis("seconds since start"), Axis("ms"))
            if len(ttft) >= 2 else "",
            "</div>"]


def _binned_ttft(records: Sequence[Dict[str, Any]], width_s: float) -> List[Tuple[float, float]]:
    """(interval middle, median TTFT ms) of the requests whose first token arrived in it."""
    bins: Dict[int, List[float]] = {}
    for r in records:
        if r.get("ttft_s") is None or r.get("send_s") is None:
            continue
        first = r["send_s"] + (r.get("queue_s") or 0.0) + r["ttft_s"]
        bins.setdefault(int(first // width_s), []).append(r["ttft_s"] * 1000.0)
    return [((index + 0.5) * width_s, statistics.median(bins[index])) for index in sorted(bins)]


def gauge_section(results: Dict[str, Any]) -> List[str]:
    """Requests running/waiting (counts: whole-number ticks) and KV cache use (a share),
    each on its own axis; a step sampled fewer than MIN_GAUGE_SAMPLES times gets a sentence."""
    series = results.get("series") or []
    if not series and not (results.get("summary") or {}).get("server"):
        return []
    samples = [p for s in series for p in s["samples"]]
    duration = (results.get("summary") or {}).get("duration_s") or 0.0
    if len(samples) < MIN_GAUGE_SAMPLES:
        return ["<h2>Server gauges</h2>", note(
            f"Run too short to sample the server's gauges: {len(samples)} sample(s) over "
            f"{duration:.2f} s of load. Set min_step_s (each step lasts at least that long "
            "and is sampled about 20 times) to see queue and KV-cache use over time.")]
    counts = [Series(name.replace("num_requests_", "requests "),
                     [(p["t_s"], p[name]) for p in samples if name in p], markers=False)
              for name in ("num_requests_running", "num_requests_waiting")]
    kv_name = next((n for n in ("kv_cache_usage_perc", "gpu_cache_usage_perc")
                    if any(n in p for p in samples)), None)
    charts = [xy_chart("Requests at the server", counts, Axis("seconds since start"),
                       Axis("requests", integer=True))]
    if kv_name:
        charts.append(xy_chart("KV cache use", [Series("KV cache", [
            (p["t_s"], p[kv_name]) for p in samples if kv_name in p], markers=False)],
            Axis("seconds since start"), Axis("share of KV cache", fmt=percent, hi=1.0)))
    return ['<h2>Server gauges</h2><div class="charts">'] + charts + ["</div>"]


def _args_section(results: Dict[str, Any]) -> List[str]:
    rows = []
    for group in ("server_args", "seeds", "server_info"):
        value = results.get(group)
        if value:
            rows.append([escape(group), escape(_text(value))])
    return ["<h2>Provenance</h2>", _table(["record", "value"], rows, left_cols=2)] if rows else []


def index_href(output_dir: str) -> Optional[str]:
    """The report index two levels up (<reports>/<run>/<model>/), when that is a reports
    tree: it holds index.html already or other runs' results."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(output_dir)))
    if os.path.exists(os.path.join(root, INDEX_FILE)) or os.path.basename(root) == "reports":
        return "../../" + INDEX_FILE
    return None


def write_run_report(results: Dict[str, Any], output_dir: str) -> str:
    path = os.path.join(output_dir, REPORT_FILE)
    write_text(path, render_run_report(results, index_href(output_dir)))
    return path


def discover_runs(report_root: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Find <root>/<timestamp>/<model>/results.json (and <root>/<timestamp>/results.json).

    Returns (entries newest first, problems); an unreadable file is reported, not fatal.
    """
    found = sorted(set(glob.glob(os.path.join(report_root, "*", "*", RESULTS_FILE))
                       + glob.glob(os.path.join(report_root, "*", RESULTS_FILE))))
    entries, problems = [], []
    for path in found:
        rel_dir = os.path.relpath(os.path.dirname(path), report_root)
        try:
            results = load_results(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{os.path.relpath(path, report_root)}: {exc}")
            continue
        report = os.path.join(os.path.dirname(path), REPORT_FILE)
        link = os.path.join(rel_dir, REPORT_FILE if os.path.exists(report) else RESULTS_FILE)
        entries.append({"run": rel_dir.split(os.sep)[0], "dir": rel_dir,
                        "link": link.replace(os.sep, "/"), "results": results})
    entries.sort(key=lambda e: (e["run"], str(e["results"].get("started", "")), e["dir"]),
                 reverse=True)
    return entries, problems


def _index_row(entry: Dict[str, Any]) -> List[str]:
    res = entry["results"]
    s = res.get("summary", {})
    req, thr = s.get("requests", {}), s.get("throughput", {})
    model = str(res.get("config", {}).get("model", "?"))
    ttft, itl, e2e = s.get("ttft_ms", {}), s.get("itl_ms", {}), s.get("e2e_ms", {})
    return [escape(entry["run"]),
            f'<a href="{escape(entry["link"])}">{escape(model)}</a>',
            _num(req.get("total")), _pct(req.get("success_rate")),
            _num(thr.get("requests_per_s"), 2), _num(thr.get("output_tokens_per_s")),
            _num(ttft.get("median")), _num(ttft.get("p99")), _num(itl.get("median")),
            _num(e2e.get("median")), _num(e2e.get("p99")), _badge(s.get("valid"))]


def render_index(report_root: str, title: str = "LLM benchmark reports", extra_html: str = "") -> str:
    entries, problems = discover_runs(report_root)
    return render_index_entries(entries, problems, title, extra_html)


def render_index_entries(entries: List[Dict[str, Any]], problems: List[str],
                         title: str = "LLM benchmark reports", extra_html: str = "") -> str:
    """`extra_html`: sections other engines add (the tuner's sweeps), placed before the footer."""
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="sub">{len(entries)} result(s) in '
            f'{len({e["run"] for e in entries})} run(s), newest first. '
            "Latencies in milliseconds; throughput over each run's measured window.</p>"]
    if entries:
        latest = [e for e in entries if e["run"] == entries[0]["run"]]
        per_model = [(str(e["results"].get("config", {}).get("model", e["dir"])), e["results"])
                     for e in sorted(latest, key=lambda e: e["dir"])]
        body += [f"<h2>Latest run · {escape(entries[0]['run'])}</h2>", '<div class="charts">',
                 cdf_chart("TTFT CDF by model", [(m, _ms_values(r, "ttft_s"))
                                                 for m, r in per_model]),
                 cdf_chart("E2E latency CDF by model", [(m, _ms_values(r, "e2e_s"))
                                                        for m, r in per_model]), "</div>"]
    body += ["<h2>All runs</h2>", _table(
        ["run", "model", "requests", "success", "req/s", "out tok/s", "TTFT p50", "TTFT p99",
         "ITL p50", "E2E p50", "E2E p99", "valid"],
        [_index_row(e) for e in entries], left_cols=2) if entries else "<p>No results yet.</p>"]
    if problems:
        body.append("<h2>Skipped</h2><ul>" + "".join(f"<li>{escape(p)}</li>" for p in problems)
                    + "</ul>")
    body.append(extra_html)
    body.append("<footer>llmops.platform benchmark reports</footer>")
    return _page(title, "".join(body))
