import json
import os

import pytest
import yaml
from tune_fakes import FakeRuntime

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.tune.journal import Journal, JournalMismatch
from ansible_collections.llmops.platform.plugins.module_utils.tune.output import best_snippet, write_outputs
from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep
from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task

TASK = {
    "task_name": "unit",
    "model": {"name": "m", "source": "generated:tiny-llama"},
    "parameters": {"max_num_seqs": [8, 16, 32], "dtype": ["bfloat16", "float7"]},
    "optimization": {"strategy": "grid", "objective": "maximize_throughput", "timeout_per_iteration": 30},
    "benchmark": {"num_concurrency": [8]},
}


def sweep(tmp_path, runtime, task=TASK, **kw):
    opts = SweepOptions(output_dir=str(tmp_path / "out"), runtime=runtime, base_args={"block_size": 32}, **kw)
    return run_sweep(parse_task(task), opts)


def test_crash_and_timeout_are_infeasible_and_the_sweep_finishes(tmp_path, install_measure):
    rt = FakeRuntime(crash_when=lambda a: a.get("dtype") == "float7", hang_when=lambda a: a.get("max_num_seqs") == 32)
    install_measure(rt)
    res = sweep(tmp_path, rt)
    by_id = {t["id"]: t for t in res["trials"]}
    assert len(res["trials"]) == 6 and res["stop_reason"] == "max_iterations reached"  # default: grid size
    crashed = [t for t in res["trials"] if t["params"]["dtype"] == "float7"]
    assert all(t["status"] == "infeasible" and t["failure"]["kind"] == "startup_crash" for t in crashed)
    assert "bad flag" in crashed[0]["failure"]["log_tail"]
    hung = by_id["t004"]
    assert hung["params"] == {"max_num_seqs": 32, "dtype": "bfloat16"}
    assert hung["failure"]["kind"] == "readiness_timeout"
    assert res["best"]["params"] == {"max_num_seqs": 16, "dtype": "bfloat16"}
    assert sorted(rt.stopped) == sorted(rt.started), "every started server must be stopped"
    assert res["default"]["status"] == "ok" and res["default"]["vllm_args"] == {"block_size": 32}


def test_kill_then_resume_repeats_no_finished_trial(tmp_path, install_measure):
    first = FakeRuntime(kill_after=3)  # default + 2 trials finish, the 3rd start is "killed"
    install_measure(first)
    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, first)
    journal = [json.loads(line) for line in open(tmp_path / "out" / "journal.jsonl")]
    assert [e["trial"]["id"] for e in journal[1:]] == ["default", "t000", "t001"]

    second = FakeRuntime()
    install_measure(second)
    res = sweep(tmp_path, second)
    assert second.started == ["t002", "t003", "t004", "t005"], "finished trials were re-run"
    assert [t["id"] for t in res["trials"]] == [f"t00{i}" for i in range(6)]
    assert res["new_trials"] == 4
    third = FakeRuntime()
    install_measure(third)
    assert sweep(tmp_path, third)["new_trials"] == 0 and third.started == []


def test_resuming_a_different_task_is_refused(tmp_path, install_measure):
    rt = FakeRuntime(kill_after=1)
    install_measure(rt)
    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, rt)
    other = dict(TASK, parameters={"max_num_seqs": [4]})
    with pytest.raises(JournalMismatch):
        sweep(tmp_path, FakeRuntime(), task=other)


def test_torn_journal_line_is_dropped(tmp_path):
    j = Journal(str(tmp_path), "abc")
    j.start()
    j.record({"id": "t000"})
    with open(j.path, "a") as handle:
        handle.write('{"kind": "trial", "trial": {"id": "t0')
    assert [t["id"] for t in Journal(str(tmp_path), "abc").load()] == ["t000"]


def test_known_infeasible_never_started(tmp_path, install_measure):
    task = dict(TASK, parameters={"max_num_seqs": [8, 64], "max_num_batched_tokens": [32, 128]})
    rt = FakeRuntime()
    install_measure(rt)
    res = sweep(tmp_path, rt, task=task, include_default=False)
    assert len(res["trials"]) == 3
    assert res["skipped_infeasible"][0]["params"] == json.dumps({"max_num_seqs": 64, "max_num_batched_tokens": 32},
                                                                sort_keys=True)


def test_early_stop(tmp_path, install_measure):
    task = json.loads(json.dumps(TASK))
    task["parameters"] = {"max_num_seqs": [16, 1, 2, 3, 4, 5, 6]}
    task["optimization"]["early_stop_patience"] = 2
    rt = FakeRuntime()
    install_measure(rt)
    res = sweep(tmp_path, rt, task=task, include_default=False)
    assert len(res["trials"]) == 3 and res["stop_reason"].startswith("early stop")


def test_outputs_and_best_snippet_deploy(tmp_path, install_measure):
    rt = FakeRuntime(crash_when=lambda a: a.get("dtype") == "float7")
    install_measure(rt)
    res = sweep(tmp_path, rt)
    models = [{"name": "other", "source": "generated:tiny-llama"},
              {"name": "chat", "source": "generated:tiny-llama", "vllm_args": {"max_model_len": 1024}}]
    snippet = best_snippet(res, "chat", "generated:tiny-llama", models)
    assert snippet["llm_models"][0] == models[0]
    assert snippet["llm_models"][1]["vllm_args"] == {"max_model_len": 1024, "max_num_seqs": 16, "dtype": "bfloat16"}
    normalize_models(snippet["llm_models"], device="cpu")  # what the vllm role will do with it
    paths = write_outputs(res, str(tmp_path / "out"), snippet)
    assert yaml.safe_load(open(paths["best_vars"])) == snippet
    data = json.load(open(paths["results"]))
    assert data["kind"] == "llmops.platform/sweep" and data["best"]["id"] == res["best"]["id"]
    assert data["pareto"] and data["overhead"]["trials"] == 4
    rows = open(paths["csv"]).read().splitlines()
    assert rows[0].startswith("trial,status,value,max_num_seqs,dtype") and len(rows) == 1 + 7
    html = open(paths["report"]).read()
    for needle in ("Best vs default", "Objective over trials", "Pareto front", "Trials ranked", "startup_crash"):
        assert needle in html
    assert os.path.basename(paths["results"]) != "results.json"  # the bench index must not read it


def test_default_wins_when_no_trial_beats_it(tmp_path, install_measure):
    task = dict(TASK, parameters={"max_num_seqs": [2, 40]})
    rt = FakeRuntime()
    install_measure(rt)
    opts = SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt, base_args={"max_num_seqs": 16})
    res = run_sweep(parse_task(task), opts)
    assert res["best"]["id"] == "default"
    snippet = best_snippet(res, "chat", "generated:tiny-llama")
    assert snippet["llm_models"][0]["vllm_args"] == {}  # keep the platform defaults
