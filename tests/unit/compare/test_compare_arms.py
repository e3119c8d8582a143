"""A third arm compared with the baseline, and the replicas' prefix-cache hit rate per run."""
import json
import os

from ansible_collections.llmops.platform.plugins.module_utils import prefix_cache
from ansible_collections.llmops.platform.plugins.module_utils.compare import load_runs, write_comparison, write_index


def summary(rps, ttft):
    return {"throughput": {"requests_per_s": rps, "output_tokens_per_s": rps * 10},
            "requests": {"success_rate": 1.0},
            "ttft_ms": {"mean": ttft, "median": ttft, "p95": ttft * 2, "p99": ttft * 3}}


def write(root, arm, rep, model, s, cache=None):
    d = os.path.join(root, arm, f"run{rep}", model)
    os.makedirs(d)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"summary": s}, f)
    if cache is not None:
        with open(os.path.join(d, "prefix_cache.json"), "w") as f:
            json.dump(cache, f)


def three_arms(root, caches=True):
    for k in (1, 2, 3):
        write(root, "baseline", k, "chat", summary(10 + k * 0.1, 300 + k),
              {"queries": 1000, "hits": 600 + k, "hit_rate_pct": 60.0 + k / 10} if caches else None)
        write(root, "managed", k, "chat", summary(14 + k * 0.1, 200 + k),
              {"queries": 1000, "hits": 550, "hit_rate_pct": 55.0 + k / 10} if caches else None)
        write(root, "prefix", k, "chat", summary(12 + k * 0.1, 150 + k),
              {"queries": 1000, "hits": 900, "hit_rate_pct": 90.0 + k / 10} if caches else None)


def files(out):
    return {kind: open(out["paths"][kind]).read() for kind in ("json", "markdown", "html")}


def test_two_arm_output_is_unchanged_by_a_third_arm_on_disk_or_an_empty_others(tmp_path):
    two, three = str(tmp_path / "two" / "run"), str(tmp_path / "three" / "run")
    three_arms(three, caches=False)
    three_arms(two, caches=False)
    for arm in ("prefix",):
        for k in (1, 2, 3):
            path = os.path.join(two, arm, f"run{k}", "chat")
            os.remove(os.path.join(path, "results.json"))
    with_third = write_comparison(three, "baseline", "managed", ["n"])
    two_only = write_comparison(two, "baseline", "managed", ["n"], others=[])
    assert "others" not in with_third["comparison"]
    assert files(with_third) == files(two_only)
    assert "prefix-cache" not in files(two_only)["markdown"]  # no prefix_cache.json: no row


def test_each_other_arm_is_compared_with_the_baseline(tmp_path):
    root = str(tmp_path / "run")
    three_arms(root)
    out = write_comparison(root, "baseline", "managed", ["three arms"], others=["prefix", "managed"])
    result = out["comparison"]
    assert list(result["others"]) == ["prefix"]  # the managed arm is not repeated
    prefix = result["others"]["prefix"]
    assert (prefix["baseline"], prefix["managed"]) == ("baseline", "prefix")
    verdict = prefix["models"]["chat"]["verdict"]
    assert verdict.startswith("prefix better beyond noise") and "prefix-cache hit rate (%)" in verdict
    assert result["models"]["chat"]["verdict"].startswith("mixed")  # managed: faster, fewer hits
    md = files(out)["markdown"]
    assert md.index("# baseline vs managed") < md.index("# baseline vs prefix")
    assert "| prefix-cache hit rate (%) | 60.2 [60.1-60.3] | 90.2 [90.1-90.3] |" in md
    # The hit rate sits next to TTFT: after the throughput rows, before the first TTFT row.
    labels = [r["label"] for r in prefix["models"]["chat"]["metrics"]]
    assert labels.index("prefix-cache hit rate (%)") + 1 == labels.index("TTFT mean (ms)")
    html = files(out)["html"]
    assert "<h1>baseline vs prefix</h1>" in html
    assert list(result["percentiles"]["chat"]["ttft_ms"]) == ["baseline", "managed", "prefix"]  # one overlay
    index = open(write_index(str(tmp_path))).read()
    assert "prefix, chat: prefix better" in index


def test_hit_rate_of_arms_without_prefix_cache_files_is_left_out(tmp_path):
    root = str(tmp_path)
    three_arms(root)
    os.remove(os.path.join(root, "managed", "run2", "chat", "prefix_cache.json"))
    runs = load_runs(root)
    assert "prefix_cache" not in runs["managed"]["chat"][1]
    assert runs["prefix"]["chat"][0]["prefix_cache"]["hit_rate_pct"] == 90.1


EXPOSITION = """# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="chat"} 1000.0
vllm:prefix_cache_queries_total{engine="1",model_name="chat"} 500.0
vllm:prefix_cache_queries_created{engine="0",model_name="chat"} 1.7e9
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="chat"} 600.0
vllm:prefix_cache_hits_total{engine="1",model_name="chat"} NaN
vllm:gpu_prefix_cache_queries_total{model_name="chat"} 7.0
"""


def test_counters_of_either_generation_summed_over_label_sets():
    assert prefix_cache.parse_counters(EXPOSITION) == {"queries": 1500.0, "hits": 600.0}
    older = "vllm:gpu_prefix_cache_queries_total{model_name=\"x\"} 40\nvllm:gpu_prefix_cache_hits_total 10 1700000000\n"
    assert prefix_cache.parse_counters(older) == {"queries": 40.0, "hits": 10.0}
    assert prefix_cache.parse_counters("vllm:gpu_prefix_cache_hit_rate 0.5\n") is None  # V0: a gauge, no counts
    assert prefix_cache.parse_counters("vllm:prefix_cache_queries_totally 3\n") is None


def test_delta_over_a_run_skips_restarted_and_silent_replicas():
    before = {"a": {"queries": 100.0, "hits": 50.0}, "b": {"queries": 900.0, "hits": 800.0}, "c": None}
    after = {"a": {"queries": 300.0, "hits": 200.0}, "b": {"queries": 10.0, "hits": 0.0}, "c": None}
    d = prefix_cache.delta(before, after)
    assert (d["queries"], d["hits"], d["hit_rate_pct"]) == (200.0, 150.0, 75.0)
    assert d["skipped"] == ["b", "c"]
    assert prefix_cache.delta({"a": {"queries": 1.0, "hits": 0.0}},
                              {"a": {"queries": 1.0, "hits": 0.0}})["hit_rate_pct"] is None
    assert prefix_cache.metrics_url("http://h:1/") == "http://h:1/metrics"
