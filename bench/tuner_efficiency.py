#!/usr/bin/env python3
"""How many trials, and how much wall time, each search strategy needs to get within 5% of
the measured optimum.

Replays a response surface measured on this machine (bench/data/surface3.json: vLLM CPU,
tiny model, every max_num_seqs x max_num_batched_tokens x dtype point, 3 runs each on one
server start, with a recorded short first step) through the tuner's own strategies and
pruner over 20 seeds, so the comparison costs no servers and is repeatable:
  * grid, random, bayesian: every trial is a full trial;
  * successive_halving: random order, each trial's recorded first step goes to the tuner's
    successive-halving pruner first; a pruned trial costs its start, readiness and first
    step only, and cannot be the one that reaches the target.
A point's value is the mean of its runs; its cost is its measured trial time (start,
readiness, warm-up, first step, benchmark, clean-up). Known-infeasible points are skipped
by every strategy (not trials); measured-infeasible points cost a trial, as in a real sweep.

    $(scripts/venv.sh path control)/bin/python bench/tuner_efficiency.py [--objective output_tokens_per_s|e2e_ms]
Re-measure the surface (36 trials, about 1 minute each on a quiet 2-core machine):
    scripts/llmops tune bench/data/surface3_task.json -o /tmp/surface3 --no-default
    cp /tmp/surface3/sweep.json bench/data/surface3.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils.tune.params import constraints, infeasible_reason  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.tune.search import (  # noqa: E402
    FirstStepPruner,
    config_key,
    make_strategy,
)

DIRECTIONS = {"output_tokens_per_s": "maximize", "requests_per_s": "maximize", "e2e_ms": "minimize",
              "ttft_ms": "minimize", "tpot_ms": "minimize"}
FIRST_STEP_METRICS = {"output_tokens_per_s": "maximize_throughput", "e2e_ms": "minimize_latency"}


@dataclass
class Point:
    value: Optional[float]        # mean over the point's runs (None: infeasible)
    full_s: float                 # the whole measured trial
    first_step: Optional[float]   # the recorded short first step's value
    pruned_s: float               # what the trial costs when stopped after its first step


def load_surface(path: str, metric: str) -> tuple[dict, dict[str, Point], dict]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    table = {}
    for trial in data["trials"]:
        timings = trial.get("timings") or {}
        value = (trial.get("metrics") or {}).get(metric) if trial["status"] == "ok" else None
        full = sum(timings.get(k, 0.0) for k in ("start_s", "ready_s", "warmup_s", "bench_s")) + \
            timings.get("stop_overlapped_s", timings.get("stop_s", 0.0))
        step = trial.get("first_step") or {}
        step_value = None
        if step and metric == data.get("metric"):
            step_value = step.get("value")
        elif step.get("points"):
            step_value = step["points"][0].get(metric)
        # The first step's own seconds when recorded, else its share of the measured requests.
        step_s = step.get("seconds")
        if step_s is None and step:
            runs = max(1, len(trial.get("repeat_values") or [1]))
            requests = step.get("requests", 0) + runs * (data["task"]["benchmark"].get("num_requests") or 1)
            step_s = timings.get("bench_s", 0.0) * step.get("requests", 0) / max(1, requests)
        pruned = timings.get("start_s", 0.0) + timings.get("ready_s", 0.0) + timings.get("warmup_s", 0.0) + \
            (step_s or 0.0) + timings.get("stop_overlapped_s", timings.get("stop_s", 0.0))
        table[config_key(trial["params"])] = Point(value, full, step_value, pruned)
    return data["space"], table, data


def reaches(value: Optional[float], target: float, direction: str) -> bool:
    return value is not None and (value >= target if direction == "maximize" else value <= target)


def replay(name: str, space: dict, table: dict[str, Point], direction: str, seed: int, target: float,
           base_args: dict) -> tuple[int, float]:
    """(trials, seconds) until a full trial within the target; pruned trials count and cost."""
    rules = constraints("cpu", 0)
    strategy = make_strategy("random" if name == "successive_halving" else name, space, direction, seed,
                             lambda c: infeasible_reason({**base_args, **c}, rules))
    pruner = FirstStepPruner("successive_halving", direction, seed) if name == "successive_halving" else None
    seconds = 0.0
    for trial in range(1, len(table) + 1):
        config = strategy.ask()
        if config is None:
            break
        point = table[config_key(config)]
        if pruner is not None and point.first_step is not None and pruner.judge(point.first_step):
            seconds += point.pruned_s
            strategy.tell(config, None)
            continue
        seconds += point.full_s
        strategy.tell(config, point.value)
        if reaches(point.value, target, direction):
            return trial, seconds
    raise RuntimeError(f"{name} seed {seed} never reached the target")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--surface", default=os.path.join(ROOT, "bench", "data", "surface3.json"))
    parser.add_argument("--objective", default="output_tokens_per_s", choices=sorted(DIRECTIONS))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--within", type=float, default=0.05)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    space, table, data = load_surface(args.surface, args.objective)
    direction = DIRECTIONS[args.objective]
    feasible = {k: p.value for k, p in table.items() if p.value is not None}
    best_key = (max if direction == "maximize" else min)(feasible, key=feasible.get)
    best = feasible[best_key]
    target = best * (1 - args.within) if direction == "maximize" else best * (1 + args.within)
    near = sum(1 for v in feasible.values() if reaches(v, target, direction))
    grid_s = sum(p.full_s for p in table.values())
    print(f"surface: {len(table)} measured points ({len(feasible)} feasible), objective {args.objective} "
          f"({direction}); optimum {best:.1f} at {best_key}; {near} point(s) within {args.within:.0%}; "
          f"all points {grid_s / 60:.1f} min of trials")
    base = {**data.get("base_args", {}), **data.get("engine_args", {})}
    names = ["grid", "random", "bayesian"]
    if any(p.first_step is not None for p in table.values()):
        names.append("successive_halving")
    results = {}
    for name in names:
        runs = [replay(name, space, table, direction, seed, target, base) for seed in range(args.seeds)]
        counts = [r[0] for r in runs]
        minutes = [r[1] / 60 for r in runs]
        results[name] = {"median": statistics.median(counts), "worst": max(counts), "best": min(counts),
                         "mean": statistics.mean(counts), "counts": counts,
                         "minutes_median": statistics.median(minutes), "minutes_worst": max(minutes)}
        print(f"{name:18s} trials to within {args.within:.0%}: median {results[name]['median']:>4}, "
              f"worst {results[name]['worst']:>3}, best {results[name]['best']:>3}; wall time median "
              f"{results[name]['minutes_median']:5.1f} min, worst {results[name]['minutes_worst']:5.1f} min "
              f"(over {args.seeds} seeds)")
    overhead = data.get("overhead") or {}
    if overhead:
        print(f"per-trial overhead (start, readiness, warm-up, clean-up): {overhead['overhead_share']:.0%} of "
              f"{overhead['mean_trial_s']:.0f}s mean trial time (readiness {overhead['shares']['ready_s']:.0%})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"objective": args.objective, "optimum": best, "target": target, "strategies": results,
                       "overhead": overhead}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
