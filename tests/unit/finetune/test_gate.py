"""The promotion gate: a better model is promoted, a worse or indistinguishable one is refused
with the reason, and the held-out split is stable."""
from __future__ import annotations

import json
import os
import random

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.finetune import gate
from ansible_collections.llmops.platform.plugins.module_utils.finetune import spec as ft

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATASET = os.path.join(ROOT, "roles/llama_factory/files/datasets/alpaca_demo.json")


def _scores(per_token: list[float], tokens: list[int]) -> gate.Scores:
    return gate.Scores(nll=[v * t for v, t in zip(per_token, tokens)], tokens=tokens)


TOKENS = [6, 4, 9, 5, 7, 3, 8, 6, 5, 4]
BASE = [7.6, 7.7, 7.5, 7.6, 7.8, 7.6, 7.7, 7.5, 7.6, 7.6]


def test_clear_improvement_is_promoted():
    tuned = [v - 3.0 for v in BASE]
    verdict = gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS))
    assert verdict["promoted"] is True
    assert verdict["ci"][1] < -0.01 and verdict["delta_nll"] == pytest.approx(-3.0)
    assert verdict["tuned_perplexity"] < verdict["base_perplexity"]
    assert verdict["reason"].startswith("promoted:")


def test_worse_model_is_refused_with_the_reason():
    tuned = [v + 0.8 for v in BASE]
    verdict = gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS))
    assert verdict["promoted"] is False
    assert "worse than the base" in verdict["reason"]
    assert "+0.800 nats/token" in verdict["reason"] and "CI" in verdict["reason"]


def test_change_within_noise_is_refused():
    rng = random.Random(3)
    tuned = [v + rng.choice([-1.0, 1.0]) for v in BASE]  # half better, half worse: noise
    verdict = gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS))
    assert verdict["promoted"] is False
    assert "beyond noise" in verdict["reason"] or "worse" in verdict["reason"]
    low, high = verdict["ci"]
    assert low < high


def test_small_gain_below_the_threshold_is_refused():
    tuned = [v - 0.005 for v in BASE]  # consistent, but smaller than min_gain
    verdict = gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS), min_gain=0.01)
    assert verdict["promoted"] is False and "-0.01" in verdict["reason"]


def test_too_few_examples_are_not_judged():
    verdict = gate.decide(_scores(BASE[:3], TOKENS[:3]), _scores([1.0] * 3, TOKENS[:3]))
    assert verdict["promoted"] is False and "too few" in verdict["reason"] and verdict["ci"] is None


def test_bootstrap_is_seeded():
    tuned = [v - 0.2 + 0.3 * ((i % 3) - 1) for i, v in enumerate(BASE)]
    first = gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS), seed=7)
    assert first == gate.decide(_scores(BASE, TOKENS), _scores(tuned, TOKENS), seed=7)


def test_mismatched_examples_are_an_error():
    with pytest.raises(gate.GateError, match="same held-out examples"):
        gate.decide(_scores(BASE, TOKENS), _scores(BASE[:9], TOKENS[:9]))
    with pytest.raises(gate.GateError, match="not finite"):
        gate.decide(_scores(BASE, TOKENS), gate.Scores(nll=[float("nan")] * 10, tokens=TOKENS))


def test_overflowing_perplexity_is_null_not_infinity():
    verdict = gate.decide(_scores(BASE, TOKENS), _scores([800.0] * 10, TOKENS))
    assert verdict["tuned_perplexity"] is None and "overflow" in verdict["reason"]
    json.dumps(verdict, allow_nan=False)


def test_split_is_stable_disjoint_and_order_independent():
    rows = json.load(open(DATASET))
    train, held = ft.split_rows(rows, 0.2, 42)
    assert len(held) == 10 and len(train) == 40
    assert not {json.dumps(r) for r in train} & {json.dumps(r) for r in held}
    _, held_reversed = ft.split_rows(list(reversed(rows)), 0.2, 42)
    assert sorted(map(json.dumps, held)) == sorted(map(json.dumps, held_reversed))
    assert ft.split_rows(rows, 0.2, 43)[1] != held
    assert ft.split_rows(rows, 0.0, 42) == (rows, [])


def test_split_rejects_non_alpaca_data():
    with pytest.raises(ft.FinetuneSpecError, match="alpaca"):
        ft.split_rows([{"text": "x"}], 0.2, 1)


def test_eval_fraction_is_checked_and_hashed():
    base = {"base_model": "generated:tiny-llama", "dataset": DATASET}
    with pytest.raises(ft.FinetuneSpecError, match="eval_fraction"):
        ft.normalize({**base, "eval_fraction": 1.5})
    assert "eval_fraction" in ft.HASHED
