#!/usr/bin/env python3
"""How many trials each search strategy needs to get within 5% of the grid optimum.

Replays a response surface measured once on this machine (bench/data/surface.json: vLLM
CPU, tiny model, every max_num_seqs x max_num_batched_tokens point, with raw per-trial
results) through the tuner's own strategies over 20 seeds, so the comparison costs no
servers and is repeatable. Known-infeasible points are skipped by every strategy (they are
not trials); measured-infeasible points cost a trial, as they would in a real sweep.

    $(scripts/venv.sh path control)/bin/python bench/tuner_efficiency.py [--objective output_tokens_per_s|e2e_ms]
Re-measure the surface (about 12 x 1-5 minutes):
    scripts/llmops tune bench/data/surface_task.json -o /tmp/surface --no-default
    cp /tmp/surface/sweep.json bench/data/surface.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils.tune.params import constraints, infeasible_reason  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.tune.search import config_key, make_strategy  # noqa: E402

DIRECTIONS = {"output_tokens_per_s": "maximize", "requests_per_s": "maximize", "e2e_ms": "minimize",
              "ttft_ms": "minimize", "tpot_ms": "minimize"}


def load_surface(path: str, metric: str) -> tuple[dict, dict[str, float | None], dict]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    table = {}
    for trial in data["trials"]:
        value = (trial.get("metrics") or {}).get(metric) if trial["status"] == "ok" else None
        table[config_key(trial["params"])] = value
    return data["space"], table, data


def trials_to_target(strategy_name: str, space: dict, table: dict, direction: str, seed: int,
                     target: float, base_args: dict) -> int:
    rules = constraints("cpu", 0)
    strategy = make_strategy(strategy_name, space, direction, seed,
                             lambda c: infeasible_reason({**base_args, **c}, rules))
    for trial in range(1, len(table) + 1):
        config = strategy.ask()
        if config is None:
            break
        value = table.get(config_key(config))
        strategy.tell(config, value)
        if value is not None and (value >= target if direction == "maximize" else value <= target):
            return trial
    raise RuntimeError(f"{strategy_name} seed {seed} never reached the target")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surface", default=os.path.join(ROOT, "bench", "data", "surface.json"))
    parser.add_argument("--objective", default="output_tokens_per_s", choices=sorted(DIRECTIONS))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--within", type=float, default=0.05)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    space, table, data = load_surface(args.surface, args.objective)
    direction = DIRECTIONS[args.objective]
    feasible = {k: v for k, v in table.items() if v is not None}
    best_key = (max if direction == "maximize" else min)(feasible, key=feasible.get)
    best = feasible[best_key]
    target = best * (1 - args.within) if direction == "maximize" else best * (1 + args.within)
    near = sum(1 for v in feasible.values() if (v >= target if direction == "maximize" else v <= target))
    print(f"surface: {len(table)} measured points ({len(feasible)} feasible), objective {args.objective} "
          f"({direction}); optimum {best:.1f} at {best_key}; {near} point(s) within {args.within:.0%}")
    base = {**data.get("base_args", {}), **data.get("engine_args", {})}
    results = {}
    for name in ("grid", "random", "bayesian"):
        counts = [trials_to_target(name, space, table, direction, seed, target, base) for seed in range(args.seeds)]
        results[name] = {"median": statistics.median(counts), "worst": max(counts), "best": min(counts),
                         "mean": statistics.mean(counts), "counts": counts}
        print(f"{name:9s} trials to within {args.within:.0%}: median {results[name]['median']:>4}, "
              f"worst {results[name]['worst']:>3}, best {results[name]['best']:>3}  (over {args.seeds} seeds)")
    grid = results["grid"]["median"]
    ratio = results["bayesian"]["median"] / grid
    print(f"bayesian median / grid = {ratio:.0%} (goal <= 40%); "
          f"worst {results['bayesian']['worst'] / grid:.0%} of grid")
    overhead = data.get("overhead") or {}
    if overhead:
        print(f"per-trial overhead (start, readiness, warm-up, clean-up): {overhead['overhead_share']:.0%} of "
              f"{overhead['mean_trial_s']:.0f}s mean trial time (readiness {overhead['shares']['ready_s']:.0%})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"objective": args.objective, "optimum": best, "target": target, "strategies": results,
                       "bayesian_over_grid": ratio, "overhead": overhead}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
