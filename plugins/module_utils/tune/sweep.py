"""The trial loop: ask -> deploy -> wait ready -> benchmark -> score -> clean up -> journal.

It knows nothing about where servers run (a Runtime does that). Every failure becomes an
infeasible trial with its reason and log tail; the sweep always finishes. Finished trials
are journalled as they end, so a re-run after a kill resumes without repeating any.
"""
from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import parallel_size

from . import TUNER_VERSION
from .journal import Journal, task_fingerprint
from .lock import RunLock
from .measure import measure
from .noise import decide
from .objectives import better, score
from .params import constraints, infeasible_reason
from .runtimes.base import Runtime, TrialFailure
from .search import FirstStepPruner, config_key, make_strategy
from .task import Task

DEFAULT_ID = "default"


@dataclass
class SweepOptions:
    output_dir: str
    runtime: Runtime
    device: str = "cpu"                 # cpu | gpu: decides known-infeasible regions
    gpus: int = 0                       # GPUs a trial may use (0: CPU)
    base_args: dict[str, Any] = field(default_factory=dict)  # platform defaults under every trial
    include_default: bool = True        # measure the untuned configuration for "best vs default"
    restart: bool = False               # discard an existing journal
    request_timeout_s: float = 60.0
    log: Callable[[str], None] = lambda line: None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _measure_repeats(task: Task, opts: SweepOptions, dep: Any, deadline: float, timings: dict[str, float],
                     record: dict[str, Any], first_step: Optional[Callable[[float], bool]]) -> list[list[dict]]:
    """The trial's benchmark, `task.repeats` times on the same server (warm-up before the first
    only). With `first_step`, a short run (first point, `task.first_step_requests`) goes first and
    `first_step(value)` may stop the trial there (record["pruned"])."""
    runtime = opts.runtime

    def bench(spec: Task) -> list[dict[str, Any]]:
        try:
            points, warm, measured = measure(spec, dep.base_url, dep.served_name, deadline, opts.request_timeout_s)
        except TimeoutError as exc:
            raise TrialFailure("timeout", f"{exc} (timeout_per_iteration {task.timeout_per_iteration:g}s)",
                               runtime.logs(dep)) from None
        timings["warmup_s"] += warm
        timings["bench_s"] += measured
        dead = runtime.dead_reason(dep)
        if dead:
            raise TrialFailure("benchmark_error", f"server died during the benchmark: {dead}", runtime.logs(dep))
        return points

    warmed = False
    if first_step is not None:
        short = dataclasses.replace(task, scenarios=task.scenarios[:1], concurrency=task.concurrency[:1],
                                    num_requests=task.first_step_requests)
        before = timings["warmup_s"] + timings["bench_s"]
        points = bench(short)
        step_s = timings["warmup_s"] + timings["bench_s"] - before
        warmed = True
        scored = score(points, task.metric, task.direction, task.slo, parallel_size(record["vllm_args"])
                       if opts.gpus else 0)
        record["first_step"] = {"requests": task.first_step_requests, "value": scored["value"],
                                "seconds": step_s, "points": points}
        if first_step(scored["value"]):
            record["pruned"] = True
            return []
    runs = []
    for k in range(task.repeats):
        spec = dataclasses.replace(task, warmup_requests=0) if (k or warmed) else task
        runs.append([{**p, "repeat": k} for p in bench(spec)])
    return runs


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


class Teardown:
    """Stops finished trials' servers on a background thread, one at a time, so the next
    trial's server starts meanwhile. `close()` waits for them; `seconds` holds each stop's
    duration and `errors` its failure, by trial id."""

    def __init__(self, runtime: Runtime, log: Callable[[str], None]) -> None:
        self.runtime = runtime
        self.log = log
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-teardown")
        self.seconds: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def submit(self, dep: Any, trial_id: str) -> None:
        self.pool.submit(self._stop, dep, trial_id)

    def _stop(self, dep: Any, trial_id: str) -> None:
        t0 = time.monotonic()
        try:
            self.runtime.stop(dep)
        except Exception as exc:  # noqa: BLE001 - a failed clean-up is reported, never raised
            self.errors[trial_id] = str(exc)
            self.log(f"clean-up of trial {trial_id} failed: {exc}")
        self.seconds[trial_id] = time.monotonic() - t0

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run_trial(task: Task, opts: SweepOptions, trial_id: str, params: dict[str, Any],
              first_step: Optional[Callable[[float], bool]] = None,
              teardown: Optional[Teardown] = None) -> dict[str, Any]:
    runtime = opts.runtime
    args = {**opts.base_args, **task.engine_args, **params}
    record: dict[str, Any] = {"id": trial_id, "params": params, "vllm_args": args, "started": _now(),
                              "status": "ok", "failure": None,
                              # Shared machines make numbers noisy: keep the load next to them.
                              "load_avg_start": list(os.getloadavg())}
    timings = {"start_s": 0.0, "ready_s": 0.0, "warmup_s": 0.0, "bench_s": 0.0, "stop_s": 0.0}
    t0 = time.monotonic()
    deadline = t0 + task.timeout_per_iteration
    dep = None
    runs: list[list[dict[str, Any]]] = []
    try:
        dep = runtime.start(trial_id, args)
        record["deployment"] = {k: v for k, v in dep.info.items() if k != "argv"}
        record["command"] = dep.info.get("argv")
        timings["start_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        runtime.wait_ready(dep, max(1.0, deadline - t1))
        timings["ready_s"] = time.monotonic() - t1
        runs = _measure_repeats(task, opts, dep, deadline, timings, record, first_step)
    except TrialFailure as failure:
        record["status"] = "infeasible"
        record["failure"] = {"kind": failure.kind, "reason": failure.reason,
                             "log_tail": failure.log_tail[-6000:]}
    except Exception as exc:  # noqa: BLE001 - a broken trial must never end the sweep
        record["status"] = "infeasible"
        record["failure"] = {"kind": "runtime_error", "reason": f"{type(exc).__name__}: {exc}",
                             "log_tail": runtime.logs(dep) if dep else ""}
    finally:
        t2 = time.monotonic()
        if dep is not None:
            if teardown is not None:
                teardown.submit(dep, trial_id)  # measured there; the next trial starts now
            else:
                try:
                    runtime.stop(dep)
                except Exception as exc:  # noqa: BLE001
                    record.setdefault("warnings", []).append(f"clean-up failed: {exc}")
        timings["stop_s"] = time.monotonic() - t2
    timings["total_s"] = time.monotonic() - t0
    timings["overhead_s"] = timings["total_s"] - timings["bench_s"]
    timings["overhead_share"] = timings["overhead_s"] / timings["total_s"] if timings["total_s"] else 0.0
    record["timings"] = timings
    record["ended"] = _now()
    record["load_avg_end"] = list(os.getloadavg())
    record["points"] = [p for run in runs for p in run]
    gpus = 0
    if opts.gpus:
        gpus = parallel_size(args)
    record.update(value=None, raw=None, metrics={}, slo_violations=[], repeat_values=[])
    if record.pop("pruned", False):
        record["status"] = "pruned"
        record["failure"] = {"kind": "pruned", "log_tail": "",
                             "reason": f"stopped after the short first step ({task.first_step_requests} requests): "
                                       f"{task.metric}={record['first_step']['value']:.4g} behind earlier "
                                       f"trials' first steps ({task.pruner} pruner)"}
    elif record["status"] == "ok":
        # Each repeat is scored alone (its value is one sample of the run-to-run spread); the
        # trial's value and metrics are the means over repeats. One infeasible repeat makes
        # the trial infeasible: a configuration that fails sometimes is not a winner.
        scores = [score(run, task.metric, task.direction, task.slo, gpus) for run in runs]
        bad = next((k for k, sc in enumerate(scores) if not sc["feasible"]), None)
        keys = sorted({k for sc in scores for k in sc["metrics"]})
        metrics = {k: (_mean(vals) if vals else None) for k in keys
                   for vals in [[sc["metrics"][k] for sc in scores if sc["metrics"].get(k) is not None]]}
        record.update(metrics=metrics, slo_violations=[v for sc in scores for v in sc["slo_violations"]])
        if bad is not None:
            sc = scores[bad]
            where = f"repeat {bad + 1} of {len(scores)}: " if len(scores) > 1 else ""
            record["status"] = "infeasible"
            record["failure"] = {"kind": "slo_violated" if sc["raw"] is not None else "benchmark_error",
                                 "reason": where + sc["reason"], "log_tail": ""}
        else:
            record.update(value=_mean([sc["value"] for sc in scores]), raw=_mean([sc["raw"] for sc in scores]),
                          repeat_values=[sc["value"] for sc in scores])
    return record


def run_sweep(task: Task, opts: SweepOptions) -> dict[str, Any]:
    """Holds the output directory's run lock throughout: a second run there is refused
    (LockHeld names the first run's pid and start), a dead run's lock is taken over."""
    with RunLock(opts.output_dir) as lock:
        note = lock.describe_takeover()
        if note and not lock.nested:
            opts.log(note)
        results = _run_sweep(task, opts)
        results["run_lock"] = {"path": lock.path, "holder": lock.info, "taken_over": lock.taken_over,
                               "note": note}
        return results


def _run_sweep(task: Task, opts: SweepOptions) -> dict[str, Any]:
    log = opts.log
    rules = constraints(opts.device, opts.gpus)
    strategy = make_strategy(task.strategy, task.space, task.direction, task.seed,
                             lambda c: infeasible_reason({**opts.base_args, **task.engine_args, **c}, rules))
    fingerprint = task_fingerprint(task.raw, {"base_args": opts.base_args, "device": opts.device,
                                              "runtime": opts.runtime.kind, "default": opts.include_default})
    journal = Journal(opts.output_dir, fingerprint)
    finished = journal.start(opts.restart)
    started = _now()
    stopped = opts.runtime.prepare(task.name)
    if stopped:
        log(f"stopped leftovers of an earlier run of this task: {', '.join(stopped)}")

    pruner = FirstStepPruner(task.pruner, task.direction, task.seed) if task.pruner not in (None, "record") else None
    # "record": every trial's first step is measured and kept, none is stopped.
    first_step = pruner.judge if pruner else ((lambda v: False) if task.pruner == "record" else None)
    teardown = Teardown(opts.runtime, log) if task.overlap_teardown else None
    try:
        return _trials(task, opts, strategy, journal, finished, started, pruner, first_step, teardown)
    finally:
        if teardown is not None:
            teardown.close()


def _trials(task: Task, opts: SweepOptions, strategy: Any, journal: Journal, finished: list[dict[str, Any]],
            started: str, pruner: Optional[FirstStepPruner], first_step: Optional[Callable[[float], bool]],
            teardown: Optional[Teardown]) -> dict[str, Any]:
    log = opts.log
    trials: list[dict[str, Any]] = []
    default_trial: Optional[dict[str, Any]] = None
    for old in finished:
        if pruner and old.get("first_step"):
            pruner.history(old["first_step"].get("value"), old.get("status") == "pruned")
        if old["id"] == DEFAULT_ID:
            default_trial = old
        else:
            strategy.tell(old["params"], old.get("value"))
            trials.append(old)
        old["resumed"] = True
    if finished:
        log(f"resuming: {len(finished)} finished trial(s) from {journal.path} are kept, not re-run")

    if opts.include_default and default_trial is None:
        log("trial default: the untuned configuration (engine and platform defaults)")
        # The default is never pruned; with a pruner its first step is the first competitor.
        default_trial = run_trial(task, opts, DEFAULT_ID, {},
                                  (lambda v: pruner.judge(v, may_prune=False)) if pruner else first_step,
                                  teardown)
        journal.record(default_trial)
        log(f"  -> {default_trial['status']} {task.metric}={default_trial.get('value')}")

    best_value: Optional[float] = None
    since_best = 0
    for t in trials:
        if better(t.get("value"), best_value, task.direction):
            best_value, since_best = t["value"], 0
        else:
            since_best += 1
    stop_reason = "max_iterations reached"
    while True:
        if len(trials) >= task.max_iterations:
            break
        if task.early_stop_patience and since_best >= task.early_stop_patience and best_value is not None:
            stop_reason = f"early stop: no improvement in {task.early_stop_patience} trials"
            break
        params = strategy.ask()
        if params is None:
            stop_reason = "search space exhausted"
            break
        trial_id = f"t{len(trials):03d}"
        log(f"trial {trial_id}: {params}")
        record = run_trial(task, opts, trial_id, params, first_step, teardown)
        record["key"] = config_key(params)
        strategy.tell(params, record.get("value"))
        journal.record(record)
        trials.append(record)
        detail = record["failure"]["reason"][:160] if record["failure"] else f"{task.metric}={record['value']:.4g}"
        log(f"  -> {record['status']}: {detail} ({record['timings']['total_s']:.0f}s)")
        if better(record.get("value"), best_value, task.direction):
            best_value, since_best = record["value"], 0
        else:
            since_best += 1

    # The untuned default competes too: the best trial replaces it only when better beyond
    # run-to-run noise (noise.decide, compare.py's rule); otherwise best.yml says "keep it".
    if teardown is not None:
        teardown.close()  # every server is gone before the report (and its clean-up time is known)
        for trial in trials + ([default_trial] if default_trial else []):
            if trial["id"] in teardown.seconds and not trial.get("resumed"):
                trial["timings"]["stop_overlapped_s"] = teardown.seconds[trial["id"]]
            if trial["id"] in teardown.errors and not trial.get("resumed"):
                trial.setdefault("warnings", []).append(f"clean-up failed: {teardown.errors[trial['id']]}")
    best, verdict = decide(default_trial, trials, task.metric, task.direction)
    log(f"verdict: {verdict['headline']}")
    return {
        "schema_version": "1",
        "kind": "llmops.platform/sweep",
        "tuner_version": TUNER_VERSION,
        "task_name": task.name,
        "task": task.raw,
        "strategy": task.strategy,
        "objective": task.objective,
        "metric": task.metric,
        "direction": task.direction,
        "seed": task.seed,
        "started": started,
        "ended": _now(),
        "stop_reason": stop_reason,
        "runtime": opts.runtime.describe(),
        "device": opts.device,
        "base_args": opts.base_args,
        "engine_args": task.engine_args,
        "space": task.space,
        "grid_size": task.grid_size,
        "skipped_infeasible": [{"params": k, "reason": r} for k, r in strategy.skipped.items()],
        "default": default_trial,
        "trials": trials,
        "best": best,
        "verdict": verdict,
        "repeats": task.repeats,
        "pruner": task.pruner and {"kind": task.pruner, "first_step_requests": task.first_step_requests,
                                   "pruned": [t["id"] for t in trials if t.get("status") == "pruned"]},
        "new_trials": sum(1 for t in trials + ([default_trial] if default_trial else []) if not t.get("resumed")),
    }
