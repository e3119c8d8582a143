"""Best trial vs the default configuration, judged beyond run-to-run noise.

The rule is compare.py's (playbooks/compare.yml): with repeats on both sides, the best trial
replaces the default only when the difference of the means exceeds twice the larger standard
deviation AND the two ranges of repeat values do not overlap. `compare.judge` decides; this
module only picks the candidate and words the verdict. With one run per trial there is no
noise estimate: the better mean is taken and the verdict says it was not judged.
"""
from __future__ import annotations

from typing import Any, Optional

from ansible_collections.llmops.platform.plugins.module_utils.compare import judge

from .objectives import better

BETTER = "better"              # the best trial beats the default beyond noise: best.yml deploys it
NO_CHANGE = "no_change"        # not beyond noise (or worse): best.yml keeps the default
UNJUDGED = "unjudged"          # one run each: no noise estimate; the better mean is taken
NOT_COMPARED = "not_compared"  # no default measured (or it failed), or no feasible trial


def _g(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.4g}"


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "the default"


def samples(trial: dict[str, Any]) -> list[float]:
    """A trial's repeat values (journals from before repeats hold only `value`)."""
    values = trial.get("repeat_values")
    if values:
        return list(values)
    return [] if trial.get("value") is None else [trial["value"]]


def decide(default: Optional[dict[str, Any]], trials: list[dict[str, Any]], metric: str,
           direction: str) -> tuple[Optional[dict[str, Any]], dict[str, Any]]:
    """(the trial best.yml deploys, verdict). Infeasible and pruned trials never count."""
    feasible = [t for t in trials if t.get("value") is not None]
    candidate = None
    for t in feasible:
        if candidate is None or better(t["value"], candidate["value"], direction):
            candidate = t
    has_default = default is not None and default.get("value") is not None
    if candidate is None or not has_default:
        pick = candidate or (default if has_default else None)
        if pick is None:
            text = "no feasible trial: nothing to recommend"
        elif candidate is None:
            text = f"no trial was feasible; the default measured {_g(default['value'])} {metric}"
        else:
            why = "was not measured" if default is None else "failed"
            text = (f"{params_text(candidate['params'])} is the best trial ({_g(candidate['value'])} {metric}); "
                    f"the default {why}, so it is not compared")
        return pick, {"kind": NOT_COMPARED, "headline": text, "candidate": candidate and candidate["id"]}

    higher = direction == "maximize"
    row = judge(samples(default), samples(candidate), higher)
    cand, dflt = row["managed"], row["baseline"]
    n = f"mean of {len(cand['values'])} vs {len(dflt['values'])} run(s)"
    base = {"candidate": candidate["id"], "metric": metric, "direction": direction,
            "candidate_values": cand["values"], "default_values": dflt["values"],
            "diff": row["diff"], "diff_pct": row["diff_pct"], "noise": row["noise"],
            "separated": row["separated"], "exceeds_noise": row["exceeds_noise"]}
    what = params_text(candidate["params"])
    if row["exceeds_noise"] is None:
        pick = candidate if better(candidate["value"], default["value"], direction) else default
        lead = (f"{what} measured better than the default" if pick is candidate
                else f"no trial measured better than the default (best: {what})")
        text = (f"{lead} ({_g(cand['mean'])} vs {_g(dflt['mean'])} {metric}, one run each): no noise estimate, "
                "not judged; set benchmark.repeats >= 2 to judge against run-to-run noise")
        return pick, {**base, "kind": UNJUDGED, "headline": text}
    if row["exceeds_noise"] and row["managed_better"]:
        text = (f"{what} is better than the default beyond noise ({_g(cand['mean'])} vs {_g(dflt['mean'])} {metric}, "
                f"{n}; difference {row['diff']:+.3g} > 2 x noise sd {_g(row['noise'])}, ranges do not overlap)")
        return candidate, {**base, "kind": BETTER, "headline": text}
    if row["exceeds_noise"]:
        why = "the default is better beyond noise"
    elif not row["managed_better"]:
        why = "no trial beats the default"
    elif abs(row["diff"]) <= 2 * row["noise"]:
        why = f"difference {row['diff']:+.3g} within 2 x noise sd {_g(row['noise'])}"
    else:
        why = "the ranges of the repeats overlap"
    text = (f"no change beyond noise: best trial {what} {_g(cand['mean'])} vs default {_g(dflt['mean'])} {metric} "
            f"({n}; {why}); best.yml keeps the default")
    return default, {**base, "kind": NO_CHANGE, "headline": text}
