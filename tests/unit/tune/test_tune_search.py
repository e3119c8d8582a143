import pytest

from ansible_collections.llmops.platform.plugins.module_utils.tune.params import constraints, infeasible_reason
from ansible_collections.llmops.platform.plugins.module_utils.tune.search import config_key, make_strategy

SPACE = {"max_num_seqs": [2, 4, 8, 16, 32], "max_num_batched_tokens": [16, 64, 256, 1024]}


def f(c):
    return 1000.0 - (c["max_num_seqs"] - 16) ** 2 - abs(c["max_num_batched_tokens"] - 256) / 10


def run(name, seed=0, budget=100):
    rules = constraints("cpu", 0)
    s = make_strategy(name, SPACE, "maximize", seed, lambda c: infeasible_reason(c, rules))
    seen = []
    while len(seen) < budget:
        c = s.ask()
        if c is None:
            break
        seen.append(c)
        s.tell(c, f(c))
    return s, seen


@pytest.mark.parametrize("name", ["grid", "random", "bayesian"])
def test_each_strategy_covers_the_feasible_space_once(name):
    s, seen = run(name)
    keys = [config_key(c) for c in seen]
    assert len(keys) == len(set(keys)), "a configuration was run twice"
    # max_num_batched_tokens 16 < max_num_seqs 32 is refused by vLLM: never run, reported
    assert {"max_num_seqs": 32, "max_num_batched_tokens": 16} not in seen
    assert len(s.skipped) == 1 and len(seen) == 19


def test_grid_order_is_declaration_order():
    _, seen = run("grid", budget=3)
    assert seen == [{"max_num_seqs": 2, "max_num_batched_tokens": 16},
                    {"max_num_seqs": 2, "max_num_batched_tokens": 64},
                    {"max_num_seqs": 2, "max_num_batched_tokens": 256}]


@pytest.mark.parametrize("name", ["random", "bayesian"])
def test_same_seed_same_sequence_and_other_seed_differs(name):
    assert run(name, 3, 8)[1] == run(name, 3, 8)[1]
    assert run(name, 3, 8)[1] != run(name, 4, 8)[1]


def test_bayesian_beats_grid_on_a_smooth_surface():
    best = max(f(c) for c in run("grid")[1])

    def trials_to_best(name, seed):
        _, seen = run(name, seed)
        return next(i + 1 for i, c in enumerate(seen) if f(c) >= best)

    grid = trials_to_best("grid", 0)
    tpe = sorted(trials_to_best("bayesian", seed) for seed in range(5))
    assert tpe[2] < grid


def test_bayesian_resume_from_history_never_repeats():
    s, seen = run("bayesian", 1, 5)
    resumed = make_strategy("bayesian", SPACE, "maximize", 1)
    for c in seen:
        resumed.tell(c, f(c))
    nxt = resumed.ask()
    assert nxt is not None and nxt not in seen


def test_infeasible_value_none_is_accepted_by_all():
    for name in ("grid", "random", "bayesian"):
        s = make_strategy(name, SPACE, "minimize", 0)
        c = s.ask()
        s.tell(c, None)
        assert s.ask() != c


# --- early stop of clearly worse trials (optuna pruners on a short first step) ---------------

def _pruned_sweep(tmp_path, monkeypatch, pruner, values, strategy="grid", kill_after=None):
    """A synthetic objective: throughput = values[max_num_seqs]; the first step (fewer requests)
    measures the same. Returns (results, runtime, measure calls per trial)."""
    from tune_fakes import FakeRuntime, sweep_mod

    from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep
    from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task

    rt = FakeRuntime(kill_after=kill_after)
    calls: dict = {}

    def measure(task, base_url, served, deadline, request_timeout_s=60.0):
        calls.setdefault(rt.started[-1], []).append(task.num_requests)
        thr = values[rt.current.get("max_num_seqs")]
        return [{"valid": True, "invalid_reasons": [], "output_tokens_per_s": thr, "e2e_ms": 1e5 / thr}], 0.0, 1.0
    monkeypatch.setattr(sweep_mod, "measure", measure)
    task = {"task_name": "prune", "model": {"name": "m", "source": "generated:tiny-llama"},
            "parameters": {"max_num_seqs": [k for k in values if k is not None]},
            "optimization": {"strategy": strategy, "objective": "maximize_throughput", "pruner": pruner,
                             "first_step_requests": 8},
            "benchmark": {"num_requests": 64, "repeats": 2}}
    res = run_sweep(parse_task(task), SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt))
    return res, rt, calls


def test_successive_halving_stops_trials_behind_on_the_first_step(tmp_path, monkeypatch):
    values = {None: 100.0, 1: 50.0, 2: 150.0, 3: 40.0, 4: 160.0, 5: 30.0}
    res, rt, calls = _pruned_sweep(tmp_path, monkeypatch, "successive_halving", values)
    status = {t["params"]["max_num_seqs"]: t["status"] for t in res["trials"]}
    # Each trial's first step must be in the better half of the first steps seen so far (default first).
    assert status == {1: "pruned", 2: "ok", 3: "pruned", 4: "ok", 5: "pruned"}
    assert calls["t000"] == [8] and calls["t001"] == [8, 64, 64]  # pruned: only the short step
    assert calls["default"] == [8, 64, 64]  # the default is never pruned
    pruned = next(t for t in res["trials"] if t["id"] == "t000")
    assert pruned["value"] is None and pruned["failure"]["kind"] == "pruned"
    assert "first step (8 requests)" in pruned["failure"]["reason"]
    assert res["best"]["params"] == {"max_num_seqs": 4} and res["pruner"]["pruned"] == ["t000", "t002", "t004"]
    assert sorted(rt.stopped) == sorted(rt.started)


def test_median_pruner_waits_for_two_trials(tmp_path, monkeypatch):
    values = {None: 100.0, 1: 50.0, 2: 150.0, 3: 40.0, 4: 120.0}
    res, _rt, _calls = _pruned_sweep(tmp_path, monkeypatch, "median", values)
    status = [t["status"] for t in res["trials"]]
    # default and t000 complete the start-up; then below the median of completed first steps is pruned.
    assert status == ["ok", "ok", "pruned", "ok"]


def test_pruning_resumes_with_the_journalled_first_steps(tmp_path, monkeypatch):
    values = {None: 100.0, 1: 50.0, 2: 150.0, 3: 40.0, 4: 160.0, 5: 30.0}
    import pytest
    with pytest.raises(KeyboardInterrupt):
        _pruned_sweep(tmp_path, monkeypatch, "successive_halving", values, kill_after=3)
    res, rt, _calls = _pruned_sweep(tmp_path, monkeypatch, "successive_halving", values)
    assert rt.started == ["t002", "t003", "t004"]
    assert [t["status"] for t in res["trials"]] == ["pruned", "ok", "pruned", "ok", "pruned"]


def test_pruner_option_is_checked():
    import pytest

    from ansible_collections.llmops.platform.plugins.module_utils.tune.errors import TaskError
    from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task
    with pytest.raises(TaskError, match="optimization.pruner"):
        parse_task({"task_name": "x", "model": {"name": "m"}, "parameters": {"max_num_seqs": [1]},
                    "optimization": {"pruner": "hyperband"}})


def test_record_pruner_measures_every_first_step_and_stops_none(tmp_path, monkeypatch):
    values = {None: 100.0, 1: 50.0, 2: 150.0, 3: 40.0}
    res, _rt, calls = _pruned_sweep(tmp_path, monkeypatch, "record", values)
    assert [t["status"] for t in res["trials"]] == ["ok", "ok", "ok"]
    assert all(c == [8, 64, 64] for c in calls.values())  # the short step, then both full runs
    assert [t["first_step"]["value"] for t in res["trials"]] == [50.0, 150.0, 40.0]
    assert all(t["first_step"]["seconds"] >= 0 for t in res["trials"])
    assert res["pruner"]["pruned"] == []


# --- the next trial starts while the previous server is being stopped -------------------------

def _timed_sweep(tmp_path, monkeypatch, overlap):
    import threading
    import time

    from tune_fakes import FakeRuntime, surface, sweep_mod

    from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep
    from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task

    events: list = []
    lock = threading.Lock()

    class SlowStop(FakeRuntime):
        def start(self, trial_id, vllm_args):
            with lock:
                events.append(("start", trial_id, time.monotonic()))
            return super().start(trial_id, vllm_args)

        def stop(self, dep):
            time.sleep(0.3)
            with lock:
                events.append(("stopped", dep.trial_id, time.monotonic()))
            super().stop(dep)

    monkeypatch.setattr(sweep_mod, "measure", lambda task, *a, **k: ([surface(dict(rt.current))], 0.0, 0.01))
    rt = SlowStop()
    task = {"task_name": "overlap", "model": {"name": "m", "source": "generated:tiny-llama"},
            "parameters": {"max_num_seqs": [4, 8, 16]},
            "optimization": {"strategy": "grid", "objective": "maximize_throughput", "overlap_teardown": overlap}}
    res = run_sweep(parse_task(task), SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt, include_default=False))
    at = {(kind, trial): t for kind, trial, t in events}
    return res, rt, at


def test_overlapped_teardown_starts_the_next_trial_before_the_stop_ends(tmp_path, monkeypatch):
    res, rt, at = _timed_sweep(tmp_path, monkeypatch, True)
    assert at[("start", "t001")] < at[("stopped", "t000")]
    assert at[("start", "t002")] < at[("stopped", "t001")]
    assert sorted(rt.stopped) == ["t000", "t001", "t002"]  # every server is gone when the sweep returns
    for trial in res["trials"]:
        assert trial["timings"]["stop_overlapped_s"] >= 0.3
        assert trial["timings"]["stop_s"] < 0.3  # the trial itself did not wait for it


def test_teardown_in_line_when_overlap_is_off(tmp_path, monkeypatch):
    res, _rt, at = _timed_sweep(tmp_path, monkeypatch, False)
    assert at[("stopped", "t000")] < at[("start", "t001")]
    assert all(t["timings"]["stop_s"] >= 0.3 and "stop_overlapped_s" not in t["timings"] for t in res["trials"])


def test_overlap_teardown_must_be_a_boolean():
    import pytest

    from ansible_collections.llmops.platform.plugins.module_utils.tune.errors import TaskError
    from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task
    with pytest.raises(TaskError, match="optimization.overlap_teardown.*true or false"):
        parse_task({"task_name": "x", "model": {"name": "m"}, "parameters": {"max_num_seqs": [1]},
                    "optimization": {"overlap_teardown": "yes"}})
