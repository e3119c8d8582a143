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
