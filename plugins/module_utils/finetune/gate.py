"""The promotion gate: is the fine-tuned model better than its base beyond noise?

Input: for each held-out example, the summed negative log-likelihood of its reference answer
under the base and under the fine-tuned model, and its answer's token count (the same tokens
for both: one tokenizer). Scoring is deterministic (prompt log-probabilities, no sampling), so
the noise that matters is which examples happen to be held out: a paired bootstrap over
examples (seeded) gives a confidence interval of the token-weighted mean NLL change. The model
is promoted only when that whole interval lies below -min_gain (it lowers the NLL by at least
min_gain nats per token with the given confidence). Pure Python, no Ansible imports.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

MIN_EXAMPLES = 5


class GateError(ValueError):
    pass


@dataclass(frozen=True)
class Scores:
    """Per-example summed NLL (nats) of the reference answer, and its token count."""

    nll: Sequence[float]
    tokens: Sequence[int]


def mean_nll(scores: Scores, picks: Sequence[int] | None = None) -> float:
    picks = range(len(scores.nll)) if picks is None else picks
    total = sum(scores.tokens[i] for i in picks)
    return sum(scores.nll[i] for i in picks) / total if total else math.nan


def perplexity(nll_per_token: float) -> float | None:
    # exp overflows past ~709 nats/token; None (JSON null) rather than an infinity JSON cannot carry.
    return math.exp(nll_per_token) if nll_per_token < 700 else None


def _fmt(value: float | None) -> str:
    return "overflow" if value is None else f"{value:.4g}"


def paired_bootstrap(base: Scores, tuned: Scores, resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean_nll(tuned) - mean_nll(base) over examples drawn with replacement
    (the same draw for both models: the comparison is paired)."""
    n = len(base.nll)
    rng = random.Random(seed)
    deltas = []
    for _resample in range(resamples):
        picks = rng.choices(range(n), k=n)
        deltas.append(mean_nll(tuned, picks) - mean_nll(base, picks))
    deltas.sort()
    tail = (1.0 - confidence) / 2.0
    low = deltas[int(math.floor(tail * (resamples - 1)))]
    high = deltas[int(math.ceil((1.0 - tail) * (resamples - 1)))]
    return low, high


def _check(base: Scores, tuned: Scores) -> None:
    if len(base.nll) != len(tuned.nll) or len(base.tokens) != len(base.nll) or list(base.tokens) != list(tuned.tokens):
        raise GateError("base and tuned scores must cover the same held-out examples with the same answer tokens")
    if any(t <= 0 for t in base.tokens):
        raise GateError("every held-out example needs at least one answer token")
    if any(not math.isfinite(v) for v in list(base.nll) + list(tuned.nll)):
        raise GateError("a held-out NLL is not finite: the server returned no usable log-probabilities")


def decide(base: Scores, tuned: Scores, min_gain: float = 0.01, confidence: float = 0.95,
           resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The verdict with its numbers and a sentence saying why."""
    _check(base, tuned)
    n = len(base.nll)
    base_mean, tuned_mean = mean_nll(base), mean_nll(tuned)
    result: dict[str, Any] = {
        "examples": n, "answer_tokens": int(sum(base.tokens)), "min_gain": min_gain, "confidence": confidence,
        "resamples": resamples, "seed": seed,
        "base_nll": base_mean, "tuned_nll": tuned_mean, "delta_nll": tuned_mean - base_mean,
        "base_perplexity": perplexity(base_mean), "tuned_perplexity": perplexity(tuned_mean),
    }
    ppl = f"perplexity {_fmt(result['base_perplexity'])} -> {_fmt(result['tuned_perplexity'])}"
    if n < MIN_EXAMPLES:
        result.update(promoted=False, ci=None, reason=(
            f"not promoted: {n} held-out examples are too few to tell a gain from noise (need {MIN_EXAMPLES}); "
            "raise llm_finetune.eval_fraction or add rows to the dataset"))
        return result
    low, high = paired_bootstrap(base, tuned, resamples, confidence, seed)
    result["ci"] = [low, high]
    span = (f"held-out NLL change {result['delta_nll']:+.3f} nats/token "
            f"[{confidence:.0%} CI {low:+.3f}, {high:+.3f}] over {n} examples ({ppl})")
    if high < -min_gain:
        result.update(promoted=True, reason=f"promoted: {span}, entirely below -{min_gain:g}")
    elif low > 0:
        result.update(promoted=False, reason=f"not promoted: the fine-tuned model is worse than the base: {span}")
    else:
        result.update(promoted=False, reason=(
            f"not promoted: not better than the base beyond noise: {span} does not lie below -{min_gain:g}"))
    return result
