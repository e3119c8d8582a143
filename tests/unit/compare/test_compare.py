"""Comparison math on hand-made summaries: means, spread, and the noise rule."""
import json
import os

from ansible_collections.llmops.platform.plugins.module_utils.compare import compare, load_runs, write_comparison


def summary(rps, ttft_mean, success=1.0):
    return {"throughput": {"requests_per_s": rps, "output_tokens_per_s": rps * 10},
            "requests": {"success_rate": success},
            "ttft_ms": {"mean": ttft_mean, "median": ttft_mean, "p95": ttft_mean * 2, "p99": ttft_mean * 3}}


def write(root, arm, rep, model, s):
    d = os.path.join(root, arm, f"run{rep}", model)
    os.makedirs(d)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"summary": s}, f)


def row(result, model, metric):
    return next(r for r in result["models"][model]["metrics"] if r["metric"] == metric)


def test_clear_win_exceeds_noise_and_small_one_does_not(tmp_path):
    root = str(tmp_path)
    for k, (b, m) in enumerate([(10.0, 14.0), (10.5, 14.2), (9.8, 13.9)], 1):
        write(root, "baseline", k, "chat", summary(b, 300 + k))
        write(root, "managed", k, "chat", summary(m, 301 + k))  # TTFT: +1 ms, inside the spread
    result = compare(load_runs(root), "baseline", "managed")
    rps = row(result, "chat", "throughput.requests_per_s")
    assert abs(rps["baseline"]["mean"] - 10.1) < 1e-9 and abs(rps["managed"]["mean"] - 14.033333) < 1e-5
    assert rps["exceeds_noise"] is True and rps["managed_better"] is True
    assert abs(rps["diff_pct"] - 100 * (14.033333333 - 10.1) / 10.1) < 1e-4
    ttft = row(result, "chat", "ttft_ms.mean")
    assert ttft["exceeds_noise"] is False and ttft["managed_better"] is False  # higher latency is worse
    assert "requests/s" in result["models"]["chat"]["verdict"]
    assert result["models"]["chat"]["managed_worse"] == []


def test_overlapping_ranges_are_noise_even_with_a_large_mean_gap(tmp_path):
    root = str(tmp_path)
    for k, (b, m) in enumerate([(10.0, 30.0), (10.0, 9.0), (10.0, 30.0)], 1):
        write(root, "baseline", k, "chat", summary(b, 100))
        write(root, "managed", k, "chat", summary(m, 100))
    rps = row(compare(load_runs(root), "baseline", "managed"), "chat", "throughput.requests_per_s")
    assert rps["exceeds_noise"] is False


def test_single_run_has_no_noise_estimate_and_files_are_written(tmp_path):
    root = str(tmp_path)
    write(root, "baseline", 1, "chat", summary(10, 100))
    write(root, "managed", 1, "chat", summary(12, 90))
    out = write_comparison(root, "baseline", "managed", ["replicas unequal"])
    assert row(out["comparison"], "chat", "throughput.requests_per_s")["exceeds_noise"] is None
    assert "no noise estimate" in out["comparison"]["models"]["chat"]["verdict"]
    md = open(out["paths"]["markdown"]).read()
    assert "| requests/s | 10 [10-10] | 12 [12-12] | +2 | +20.0 |" in md
    assert "replicas unequal" in open(out["paths"]["html"]).read()
