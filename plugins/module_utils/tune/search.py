"""Search strategies over a finite parameter space: grid, random, Bayesian (optuna TPE).

All share one contract: `ask()` -> next configuration (None when the space or budget is
spent), `tell(config, value)` with value None for an infeasible trial. Known-infeasible
configurations (params.constraints) are never returned: grid and random skip them, and the
Bayesian sampler is told about them as constraint violations so TPE learns the region
without a server ever being started. Everything is seeded and deterministic.
"""
from __future__ import annotations

import itertools
import json
import random
from typing import Any, Callable, Optional

Config = dict[str, Any]
MAX_RESAMPLES = 200


def config_key(config: Config) -> str:
    return json.dumps(config, sort_keys=True)


class Strategy:
    name = "abstract"

    def __init__(self, space: dict[str, list[Any]], direction: str, seed: int = 0,
                 infeasible: Callable[[Config], Optional[str]] = lambda c: None) -> None:
        self.space = space
        self.direction = direction
        self.seed = seed
        self.infeasible = infeasible
        self.done: dict[str, Optional[float]] = {}
        self.skipped: dict[str, str] = {}  # known-infeasible configs never run, with reason

    def all_configs(self) -> list[Config]:
        names = list(self.space)
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.space[n] for n in names))]

    def _runnable(self, config: Config) -> bool:
        key = config_key(config)
        if key in self.done:
            return False
        reason = self.infeasible(config)
        if reason:
            self.skipped[key] = reason
            return False
        return True

    def ask(self) -> Optional[Config]:
        raise NotImplementedError

    def tell(self, config: Config, value: Optional[float]) -> None:
        self.done[config_key(config)] = value


class GridStrategy(Strategy):
    """004's behaviour: every combination in declaration order."""
    name = "grid"

    def ask(self) -> Optional[Config]:
        for config in self.all_configs():
            if self._runnable(config):
                return config
        return None


class RandomStrategy(Strategy):
    """Uniform without replacement: a seeded permutation of the grid."""
    name = "random"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = self.all_configs()
        random.Random(self.seed).shuffle(self.order)

    def ask(self) -> Optional[Config]:
        for config in self.order:
            if self._runnable(config):
                return config
        return None


class BayesianStrategy(Strategy):
    """optuna TPE. Numeric parameters are suggested as an ordinal index (so TPE can use
    their order), strings and booleans as categories. Infeasible trials carry a positive
    constraint value, which TPE's constrained mode ranks below every feasible trial."""
    name = "bayesian"

    def __init__(self, space: dict[str, list[Any]], direction: str, seed: int = 0,
                 infeasible: Callable[[Config], Optional[str]] = lambda c: None,
                 n_startup_trials: int | None = None) -> None:
        super().__init__(space, direction, seed, infeasible)
        if n_startup_trials is None:
            # Random start-up trials before TPE models the space: optuna's 10 would be most of
            # a 12-point space. ~1/6 of the space, 2..4, tried on synthetic surfaces beforehand.
            n_startup_trials = min(4, max(2, len(self.all_configs()) // 6))
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.ordinal = {n: all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
                        and len(vals) > 1 for n, vals in space.items()}
        # optuna 5: constraints are recorded per trial (set_constraint); TPE reads them.
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                             multivariate=True)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.fallback = random.Random(seed + 7919)
        self._worst: Optional[float] = None

    def _distributions(self) -> dict[str, Any]:
        dist = self._optuna.distributions
        return {(f"{n}__idx" if self.ordinal[n] else n):
                (dist.IntDistribution(0, len(vals) - 1) if self.ordinal[n]
                 else dist.CategoricalDistribution(vals))
                for n, vals in self.space.items()}

    def _suggest(self, trial: Any) -> Config:
        config = {}
        for name, vals in self.space.items():
            if self.ordinal[name]:
                config[name] = vals[trial.suggest_int(f"{name}__idx", 0, len(vals) - 1)]
            elif len(vals) == 1:
                config[name] = vals[0]
            else:
                config[name] = trial.suggest_categorical(name, vals)
        return config

    def _penalty(self) -> float:
        # Infeasible trials need some value; constraint ranking puts them last anyway.
        worst = self._worst if self._worst is not None else 0.0
        return worst * 2 + 1.0 if self.direction == "minimize" else min(worst / 2, 0.0) - 1.0

    def _record(self, trial: Any, value: Optional[float]) -> None:
        trial.set_constraint("feasible", 0.0 if value is not None else 1.0)
        self.study.tell(trial, value if value is not None else self._penalty())

    def ask(self) -> Optional[Config]:
        total = len(self.all_configs())
        for _attempt in range(MAX_RESAMPLES):
            if len(self.done) + len(self.skipped) >= total:
                return None
            trial = self.study.ask()
            config = self._suggest(trial)
            key = config_key(config)
            if key in self.done:  # a finite space repeats itself: feed back the known result
                self._record(trial, self.done[key])
                continue
            reason = self.infeasible(config)
            if reason:
                self.skipped[key] = reason
                self._record(trial, None)
                continue
            self.pending = trial
            return config
        # TPE keeps proposing known points: take a seeded random untried one instead.
        left = [c for c in self.all_configs() if self._runnable(c)]
        self.pending = None
        return self.fallback.choice(left) if left else None

    def tell(self, config: Config, value: Optional[float]) -> None:
        super().tell(config, value)
        if value is not None and (self._worst is None or
                                  (value > self._worst if self.direction == "minimize" else value < self._worst)):
            self._worst = value
        trial = getattr(self, "pending", None)
        if trial is not None and config_key(self._suggest_params(trial)) == config_key(config):
            self._record(trial, value)
            self.pending = None
            return
        # Resume (or fallback pick): add the finished trial to the study as history.
        params = {(f"{n}__idx" if self.ordinal[n] else n): (self.space[n].index(v) if self.ordinal[n] else v)
                  for n, v in config.items() if self.ordinal[n] or len(self.space[n]) > 1}
        dists = {k: v for k, v in self._distributions().items() if k in params}
        frozen = self._optuna.trial.create_trial(
            params=params, distributions=dists,
            value=value if value is not None else self._penalty(),
            constraints={"feasible": 0.0 if value is not None else 1.0})
        self.study.add_trial(frozen)

    def _suggest_params(self, trial: Any) -> Config:
        config = {}
        for name, vals in self.space.items():
            if self.ordinal[name]:
                config[name] = vals[trial.params[f"{name}__idx"]]
            elif len(vals) == 1:
                config[name] = vals[0]
            else:
                config[name] = trial.params[name]
        return config


class FirstStepPruner:
    """Early stop of clearly worse trials, for every strategy: each trial's short first step
    is reported to an optuna study (step 1) whose pruner decides. `successive_halving`
    (optuna's SuccessiveHalvingPruner, reduction factor 2: a trial goes on only if its first
    step is in the better half of those seen so far; the first one always does) or `median`
    (MedianPruner: worse than the median of the first steps of trials that went on, after 2).
    The study holds only first-step values, so the search strategy is unaffected."""

    STEP = 1

    def __init__(self, kind: str, direction: str, seed: int = 0) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.kind = kind
        if kind == "successive_halving":
            # min_resource=1: the first rung is the first step; one rung only (the full run follows).
            pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=self.STEP, reduction_factor=2,
                                                            min_early_stopping_rate=0)
        elif kind == "median":
            pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        else:
            raise ValueError(f"unknown pruner {kind!r}")
        self.study = optuna.create_study(direction=direction, pruner=pruner,
                                         sampler=optuna.samplers.RandomSampler(seed=seed))

    def judge(self, value: Optional[float], may_prune: bool = True) -> bool:
        """True: stop this trial now. A first step that failed is not pruned: the full run
        records the failure with its reason."""
        trial = self.study.ask()
        state = self._optuna.trial.TrialState
        if value is None:
            self.study.tell(trial, state=state.FAIL)
            return False
        trial.report(value, self.STEP)
        prune = bool(trial.should_prune()) and may_prune
        if prune:
            self.study.tell(trial, state=state.PRUNED)
        else:
            self.study.tell(trial, value)
        return prune

    def history(self, value: Optional[float], pruned: bool) -> None:
        """A finished trial from the journal (resume): its first step competes again."""
        if value is None:
            return
        state = self._optuna.trial.TrialState
        # SuccessiveHalvingPruner keeps each trial's rung value in a system attribute.
        attrs = {"completed_rung_0": value} if self.kind == "successive_halving" else {}
        self.study.add_trial(self._optuna.trial.create_trial(
            state=state.PRUNED if pruned else state.COMPLETE, value=None if pruned else value,
            intermediate_values={self.STEP: value}, system_attrs=attrs))


STRATEGIES = {"grid": GridStrategy, "random": RandomStrategy, "bayesian": BayesianStrategy}


def make_strategy(name: str, space: dict[str, list[Any]], direction: str, seed: int = 0,
                  infeasible: Callable[[Config], Optional[str]] = lambda c: None) -> Strategy:
    return STRATEGIES[name](space, direction, seed, infeasible)
