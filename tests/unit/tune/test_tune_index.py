"""The sweeps' rows in reports/index.html: the noise-aware verdict, never a bare `{}`."""
import json
import os

from ansible_collections.llmops.platform.plugins.module_utils.tune import output


def _sweep(root, name, best_params, verdict):
    path = os.path.join(root, "sweeps", name)
    os.makedirs(path)
    with open(os.path.join(path, output.RESULTS_FILE), "w", encoding="utf-8") as handle:
        json.dump({"task_name": name, "started": f"2026-12-02T0{len(name)}:00:00+00:00", "strategy": "bayesian",
                   "objective": "maximize_throughput", "metric": "output_tokens_per_s", "trials": [{}, {}],
                   "best": {"params": best_params, "value": 791.79}, "verdict": verdict}, handle)


def test_index_rows_say_the_verdict_and_name_the_default(tmp_path):
    _sweep(str(tmp_path), "same", {}, {"exceeds_noise": False, "kind": "no_change", "diff_pct": -11.2})
    _sweep(str(tmp_path), "better", {"max_num_seqs": 16, "max_num_batched_tokens": 1024},
           {"exceeds_noise": True, "kind": "better", "diff_pct": 12.04})
    html = output.render_index_section(str(tmp_path))
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in html.split("<tr>")[2:]}
    same, better = rows["same"], rows["better"]
    assert "no change beyond noise" in same and "the default" in same and "{}" not in html
    assert "better beyond noise</b> (+12.0%)" in better
    assert "max_num_batched_tokens=1024, max_num_seqs=16" in better
    assert "791.79 <small>output_tokens_per_s</small>" in html


def test_no_sweeps_no_section(tmp_path):
    assert output.render_index_section(str(tmp_path)) == ""
