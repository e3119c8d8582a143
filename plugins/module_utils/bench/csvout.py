"""CSV across runs: one row per (run, model, load step), for spreadsheets and diffing."""
from __future__ import annotations

import csv
import io
from typing import Any, Dict, Iterable, List

COLUMNS = ["run", "model", "profile", "step", "label", "valid", "target_rate", "achieved_rate",
           "requests_per_s", "output_tokens_per_s", "succeeded", "failed",
           "ttft_ms_mean", "ttft_ms_median", "ttft_ms_p90", "ttft_ms_p99",
           "tpot_ms_mean", "tpot_ms_median", "tpot_ms_p99",
           "e2e_ms_mean", "e2e_ms_median", "e2e_ms_p90", "e2e_ms_p99",
           "dispatch_lag_p99_ms", "goodput_share", "seed", "engine"]


def rows(run: str, results: Dict[str, Any]) -> List[Dict[str, Any]]:
    summary = results.get("summary", {})
    config = results.get("config", {})
    out = []
    for st in summary.get("steps") or []:
        row: Dict[str, Any] = {
            "run": run, "model": config.get("model"), "profile": summary.get("profile"),
            "step": st.get("index"), "label": st.get("label"), "valid": st.get("valid"),
            "target_rate": st.get("rate"), "achieved_rate": st.get("achieved_rate"),
            "requests_per_s": st.get("requests_per_s"),
            "output_tokens_per_s": st.get("output_tokens_per_s"),
            "succeeded": st.get("succeeded"), "failed": st.get("failed"),
            "dispatch_lag_p99_ms": st.get("dispatch_lag_p99_ms"),
            "goodput_share": st.get("goodput_share"), "seed": config.get("seed"),
            "engine": (results.get("versions") or {}).get("engine")}
        for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
            for stat, value in (st.get(key) or {}).items():
                if f"{key}_{stat}" in COLUMNS:
                    row[f"{key}_{stat}"] = value
        out.append(row)
    return out


def render(all_rows: Iterable[Dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in all_rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
