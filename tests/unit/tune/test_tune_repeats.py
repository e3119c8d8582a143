"""Repeats per trial and the noise-aware verdict (compare.py's rule) on best vs default."""
import html
import itertools

import yaml
from tune_fakes import FakeRuntime, sweep_mod

from ansible_collections.llmops.platform.plugins.module_utils.tune.output import best_snippet, write_outputs
from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep
from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task

TASK = {
    "task_name": "unit-repeats",
    "model": {"name": "m", "source": "generated:tiny-llama"},
    "parameters": {"max_num_seqs": [8, 16]},
    "optimization": {"strategy": "grid", "objective": "maximize_throughput", "timeout_per_iteration": 30},
    "benchmark": {"num_concurrency": [8], "repeats": 3},
}


def point(thr, valid=True):
    return {"scenario": "D(64,32)", "concurrency": 8, "valid": valid,
            "invalid_reasons": [] if valid else ["12 of 32 requests failed"],
            "output_tokens_per_s": thr, "requests_per_s": thr / 32, "goodput_rps": thr / 32,
            "e2e_ms": 100000.0 / thr, "ttft_ms": 10.0, "tpot_ms": 2.0}


def install(monkeypatch, runtime, means, noise=(-2.0, 2.0, -2.0), invalid=None):
    """Throughput = means[max_num_seqs] + a repeating noise sequence per trial."""
    calls = {}

    def measure(task, base_url, served, deadline, request_timeout_s=60.0):
        seqs = runtime.current.get("max_num_seqs")
        k = calls.setdefault(runtime.started[-1], itertools.count())
        n = next(k)
        bad = invalid is not None and invalid(seqs, n)
        return [point(means[seqs] + noise[n % len(noise)], valid=not bad)], 0.1, 1.0
    monkeypatch.setattr(sweep_mod, "measure", measure)


def sweep(tmp_path, task=TASK):
    rt = FakeRuntime()
    return rt, lambda: run_sweep(parse_task(task), SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt))


def test_better_beyond_noise_replaces_the_default(tmp_path, monkeypatch):
    rt, run = sweep(tmp_path)
    install(monkeypatch, rt, {None: 100.0, 8: 101.0, 16: 130.0})
    res = run()
    assert res["default"]["repeat_values"] == [98.0, 102.0, 98.0]
    assert res["best"]["params"] == {"max_num_seqs": 16} and res["verdict"]["kind"] == "better"
    head = res["verdict"]["headline"]
    assert head.startswith("max_num_seqs=16 is better than the default beyond noise (129.3 vs 99.33 "
                           "output_tokens_per_s, mean of 3 vs 3 run(s)"), head
    snippet = best_snippet(res, "chat", "generated:tiny-llama")
    assert snippet["llm_models"][0]["vllm_args"] == {"max_num_seqs": 16}
    paths = write_outputs(res, str(tmp_path / "out"), snippet)
    assert head in html.unescape(open(paths["report"]).read())
    text = open(paths["best_vars"]).read()
    assert "No change" not in text and yaml.safe_load(text) == snippet


def test_no_change_beyond_noise_keeps_the_default(tmp_path, monkeypatch):
    rt, run = sweep(tmp_path)
    install(monkeypatch, rt, {None: 100.0, 8: 99.0, 16: 103.0})  # +3 against a noise sd of 2.3
    res = run()
    assert res["best"]["id"] == "default" and res["verdict"]["kind"] == "no_change"
    assert res["verdict"]["candidate"] == "t001"
    head = res["verdict"]["headline"]
    assert head.startswith("no change beyond noise: best trial max_num_seqs=16 102.3 vs default 99.33"), head
    assert "within 2 x noise sd 2.309" in head and head.endswith("best.yml keeps the default")
    snippet = best_snippet(res, "chat", "generated:tiny-llama")
    assert snippet["llm_models"][0]["vllm_args"] == {}
    paths = write_outputs(res, str(tmp_path / "out"), snippet)
    text = open(paths["best_vars"]).read()
    assert "# No change beyond run-to-run noise: this keeps the DEFAULT configuration" in text
    assert yaml.safe_load(text) == snippet
    assert "no change beyond noise" in open(paths["report"]).read()


def test_overlapping_ranges_are_no_change_even_past_twice_the_sd(tmp_path, monkeypatch):
    task = dict(TASK, benchmark={"num_concurrency": [8], "repeats": 10})
    rt, run = sweep(tmp_path, task)
    # One low run each: default 89..100, max_num_seqs=16 99..110; +8.9 > 2 x sd 3.48, but they overlap.
    install(monkeypatch, rt, {None: 100.0, 8: 50.0, 16: 110.0}, noise=(-11.0,) + (0.0,) * 9)
    res = run()
    verdict = res["verdict"]
    assert verdict["diff"] > 2 * verdict["noise"] and not verdict["separated"]
    assert verdict["kind"] == "no_change" and "the ranges of the repeats overlap" in verdict["headline"]


def test_a_failing_trial_does_not_count(tmp_path, monkeypatch):
    rt, run = sweep(tmp_path)
    # 16 is by far the fastest, but its second repeat fails: it is infeasible, not the best.
    install(monkeypatch, rt, {None: 100.0, 8: 120.0, 16: 500.0}, invalid=lambda seqs, n: seqs == 16 and n == 1)
    res = run()
    t16 = next(t for t in res["trials"] if t["params"] == {"max_num_seqs": 16})
    assert t16["status"] == "infeasible" and t16["value"] is None
    assert t16["failure"]["reason"].startswith("repeat 2 of 3: benchmark invalid")
    assert res["verdict"]["candidate"] == "t000" and res["verdict"]["kind"] == "better"
    assert res["best"]["params"] == {"max_num_seqs": 8}


def test_one_run_per_trial_is_not_judged(tmp_path, monkeypatch):
    task = dict(TASK, benchmark={"num_concurrency": [8]})
    rt, run = sweep(tmp_path, task)
    install(monkeypatch, rt, {None: 100.0, 8: 99.0, 16: 101.0})
    res = run()
    assert res["verdict"]["kind"] == "unjudged" and res["best"]["params"] == {"max_num_seqs": 16}
    assert "set benchmark.repeats >= 2" in res["verdict"]["headline"]
    assert res["default"]["repeat_values"] == [98.0]
