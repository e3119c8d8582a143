"""The fine-tuning section of reports/index.html: one row per evaluated run
(reports/finetune/<run>/eval.json, written by the llama_factory role)."""
from __future__ import annotations

import glob
import json
import os
from html import escape
from typing import Any, Optional


def _num(value: Optional[float], digits: int = 2) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def _bench(result: dict[str, Any], role: str, key: str, sub: str) -> Optional[float]:
    return (((result.get("bench") or {}).get(role) or {}).get(key) or {}).get(sub)


def entries(report_root: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(glob.glob(os.path.join(report_root, "finetune", "*", "eval.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            continue
        out.append({"dir": os.path.relpath(os.path.dirname(path), report_root), "result": result,
                    "mtime": os.path.getmtime(path)})
    return sorted(out, key=lambda e: e["mtime"], reverse=True)


def _row(entry: dict[str, Any]) -> str:
    r, link = entry["result"], entry["dir"]
    gate = r.get("gate") or {}
    ci = gate.get("ci")
    delta = _num(gate.get("delta_nll"), 3) + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
    exact = r.get("exact_match") or {}
    bench_links = " ".join(
        f"<a href='{escape(link)}/bench/{role}/report.html'>{role}</a>" for role in ("base", "tuned")
        if (r.get("bench") or {}).get(role))
    verdict = "promoted" if r.get("promoted") else "not promoted"
    cells = [
        f"<a href='{escape(link)}/eval.json'>{escape(str(r.get('run', link)))}</a>",
        escape(str((r.get("models") or {}).get("tuned", ""))),
        f"{_num(gate.get('base_perplexity'), 1)} &rarr; {_num(gate.get('tuned_perplexity'), 1)}",
        delta,
        f"{_num(exact.get('base'), 2)} &rarr; {_num(exact.get('tuned'), 2)}",
        f"{_num(_bench(r, 'base', 'ttft_ms', 'median'), 1)} / {_num(_bench(r, 'tuned', 'ttft_ms', 'median'), 1)}",
        f"{_num(_bench(r, 'base', 'throughput', 'output_tokens_per_s'), 1)} / "
        f"{_num(_bench(r, 'tuned', 'throughput', 'output_tokens_per_s'), 1)}",
    ]
    cells.append(f"<b>{verdict}</b>")
    # The gate's reason is a sentence: a row of its own under the numbers, wrapped.
    reason = (f"<td class='l w' colspan='{len(cells)}'><small>{escape(str(r.get('reason', '')))}"
              f"{' &middot; benchmarks: ' + bench_links if bench_links else ''}</small></td>")
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr><tr>" + reason + "</tr>"


def render_index_section(report_root: str) -> str:
    """HTML fragment (heading and table); empty when no run was evaluated."""
    found = entries(report_root)
    if not found:
        return ""
    head = ["run", "served as", "perplexity base &rarr; tuned", "NLL change (nats/token) [CI]",
            "exact match base &rarr; tuned", "TTFT p50 ms base / tuned", "output tok/s base / tuned", "gate"]
    return ("<h2>Fine-tuning: base vs fine-tuned on held-out rows</h2><div class='wide'><table><thead><tr>"
            + "".join(f"<th class='w'>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(_row(e) for e in found) + "</tbody></table></div>")
