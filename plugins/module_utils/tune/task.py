"""Load and validate a sweep task file (004's JSON format, or the same in YAML).

Everything is checked up front, before any server starts; each error names the field and
the fix. Additions over 004 are optional: model.source, runtime, engine_args,
optimization.seed / early_stop_patience / pruner, benchmark.num_requests / warmup_requests /
repeats, slo.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import TaskError
from .params import PARAMS, canonical_name, check_value

PRUNERS = ("none", "median", "successive_halving", "record")
STRATEGIES = {"grid_search": "grid", "grid": "grid", "random": "random", "random_search": "random",
              "bayesian": "bayesian", "tpe": "bayesian", "optuna": "bayesian"}
OBJECTIVES = {
    "minimize_latency": ("e2e_ms", "minimize"),
    "minimize_e2e": ("e2e_ms", "minimize"),
    "minimize_ttft": ("ttft_ms", "minimize"),
    "minimize_tpot": ("tpot_ms", "minimize"),
    "maximize_throughput": ("output_tokens_per_s", "maximize"),
    "maximize_goodput": ("goodput_rps", "maximize"),
}
RUNTIMES = ("local", "docker", "kubernetes")
SLO_KEYS = {"ttft_ms", "tpot_ms", "e2e_ms"}
SCENARIO_RE = {
    "D": re.compile(r"^D\((\d+),(\d+)\)$"),
    "N": re.compile(r"^N\((\d+),(\d+)\)/\((\d+),(\d+)\)$"),
    "U": re.compile(r"^U\((\d+),(\d+)\)/\((\d+),(\d+)\)$"),
}
TOP_KEYS = {"task_name", "description", "model", "base_runtime", "runtime", "parameters",
            "engine_args", "optimization", "benchmark", "slo"}
NAME_RE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Scenario:
    text: str
    prompt_tokens: int
    output_tokens: int


@dataclass
class Task:
    name: str                          # task_name, made DNS-safe (used in process/pod names)
    raw: dict[str, Any]                # the file as read, stored in results for provenance
    model_name: str
    model_source: Optional[str]
    base_runtime: str
    runtime: Optional[str]
    space: dict[str, list[Any]]        # canonical vLLM arg name -> candidate values
    engine_args: dict[str, Any]        # fixed vLLM args for every trial
    strategy: str
    objective: str
    metric: str
    direction: str
    max_iterations: int
    timeout_per_iteration: float
    seed: int
    early_stop_patience: Optional[int]
    scenarios: list[Scenario]
    concurrency: list[int]
    additional_params: dict[str, Any]
    num_requests: int
    warmup_requests: int
    endpoint: str
    slo: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1                   # benchmark runs per trial (same server); >= 2 gives a noise estimate
    # None | median | successive_halving: stop clearly worse trials early; record: measure every
    # trial's first step but never stop one (a surface for replaying pruners offline)
    pruner: Optional[str] = None
    first_step_requests: int = 0       # the pruner's short first step (first point only)
    # Stop a finished trial's server in the background while the next one starts (its port
    # differs; the clean-up is mostly waiting for the process to exit).
    overlap_teardown: bool = True

    @property
    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.space.values())


def load_task_file(path: str) -> Task:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise TaskError("task file", f"cannot read {path}: {exc.strerror}") from None
    if path.endswith((".yml", ".yaml")):
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TaskError("task file", f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TaskError("task file", f"{path} is not valid JSON ({exc}); "
                                         "use .yml/.yaml for YAML task files") from None
    return parse_task(data)


def _require(data: dict, key: str, kind: type, where: str, hint: str) -> Any:
    if key not in data:
        raise TaskError(f"{where}{key}", f"is missing; {hint}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise TaskError(f"{where}{key}", f"must be a {kind.__name__}, got {value!r}; {hint}")
    return value


def _int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        quoted = " (numbers must not be quoted)" if isinstance(value, str) else ""
        raise TaskError(field, f"must be a whole number >= {minimum}, got {value!r}{quoted}")
    if value < minimum:
        raise TaskError(field, f"must be >= {minimum}, got {value}")
    return int(value)


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise TaskError(field, f"must be true or false, got {value!r}")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        quoted = " (numbers must not be quoted)" if isinstance(value, str) else ""
        raise TaskError(field, f"must be a number > 0, got {value!r}{quoted}")
    return float(value)


def _values(spec: Any, field: str) -> list[Any]:
    """004 writes {"type": "choice", "values": [...]}; a plain list means the same."""
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, dict):
        kind = spec.get("type", "choice")
        if kind == "choice":
            values = spec.get("values")
            if not isinstance(values, list):
                raise TaskError(f"{field}.values", "is missing; write {\"type\": \"choice\", \"values\": [1, 2]}")
        elif kind in ("int", "range"):
            low, high = spec.get("low"), spec.get("high")
            step = spec.get("step", 1)
            for key, val in (("low", low), ("high", high), ("step", step)):
                _int(val, f"{field}.{key}", 1 if key == "step" else 0)
            if high < low:
                raise TaskError(f"{field}.high", f"{high} is below low {low}")
            values = list(range(int(low), int(high) + 1, int(step)))
            if len(values) > 1000:
                raise TaskError(field, f"{len(values)} values; raise step to keep the space finite")
        else:
            raise TaskError(f"{field}.type", f"{kind!r} is not supported; use choice (with values) "
                                             "or int (with low, high, step)")
    else:
        values = [spec]  # a fixed value
    if not values:
        raise TaskError(field, "has no values; give at least one")
    return values


def _space(params: Any) -> dict[str, list[Any]]:
    if not isinstance(params, dict) or not params:
        raise TaskError("parameters", "must map parameter names to {\"type\": \"choice\", "
                                      "\"values\": [...]} (or a list of values); at least one")
    space: dict[str, list[Any]] = {}
    for raw_name, spec in params.items():
        where = f"parameters.{raw_name}"
        name = canonical_name(raw_name, where)
        if name in space:
            raise TaskError(where, f"duplicates another entry that also means {name}")
        vals = [check_value(PARAMS[name], v, f"{where}.values[{i}]")
                for i, v in enumerate(_values(spec, where))]
        if len(set(map(repr, vals))) != len(vals):
            raise TaskError(f"{where}.values", "contains duplicates")
        space[name] = vals
    return space


def _engine_args(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaskError("engine_args", "must be a mapping of vLLM args, e.g. {\"max_model_len\": 1024}")
    out = {}
    for raw_name, value in data.items():
        name = canonical_name(raw_name, f"engine_args.{raw_name}")
        out[name] = check_value(PARAMS[name], value, f"engine_args.{raw_name}")
    return out


def parse_scenario(text: Any, field: str) -> Scenario:
    """genai-bench notation; N and U use their means (the engine sends fixed lengths here)."""
    if not isinstance(text, str):
        raise TaskError(field, f"{text!r} is not a scenario string like \"D(100,100)\"")
    compact = text.replace(" ", "")
    match = SCENARIO_RE["D"].match(compact)
    if match:
        return Scenario(text, int(match[1]), int(match[2]))
    match = SCENARIO_RE["N"].match(compact)
    if match:
        return Scenario(text, int(match[1]), int(match[3]))
    match = SCENARIO_RE["U"].match(compact)
    if match:
        return Scenario(text, (int(match[1]) + int(match[2])) // 2, (int(match[3]) + int(match[4])) // 2)
    raise TaskError(field, f"{text!r} is not a traffic scenario; write D(in,out), "
                           "N(mean_in,sd_in)/(mean_out,sd_out) or U(min_in,max_in)/(min_out,max_out)")


def _additional(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TaskError("benchmark.additional_params", "must be a mapping, e.g. {\"temperature\": 0.0}")
    numeric = {"temperature", "top_p", "top_k", "min_p", "frequency_penalty", "presence_penalty",
               "repetition_penalty", "seed"}
    for key, value in params.items():
        where = f"benchmark.additional_params.{key}"
        if key in numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fix = f"write {key}: {value}" if isinstance(value, str) else "use a number"
            raise TaskError(where, f"must be a number, got {type(value).__name__} {value!r}; {fix} "
                                   "(without quotes)")
    return dict(params)


def _slo(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaskError("slo", "must be a mapping like {\"ttft_ms\": 500, \"tpot_ms\": 50, \"mode\": \"penalty\"}")
    allowed = SLO_KEYS | {"mode", "percentile", "penalty_weight"}
    for key in data:
        if key not in allowed:
            raise TaskError(f"slo.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    out: dict[str, Any] = {k: _number(data[k], f"slo.{k}") for k in SLO_KEYS if k in data}
    if not out:
        raise TaskError("slo", "set at least one threshold: ttft_ms, tpot_ms or e2e_ms")
    mode = data.get("mode", "penalty")
    if mode not in ("penalty", "hard"):
        raise TaskError("slo.mode", f"{mode!r}; use penalty (score worsened) or hard (trial infeasible)")
    out["mode"] = mode
    pct = data.get("percentile", 90)
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 < pct <= 100:
        raise TaskError("slo.percentile", f"{pct!r}; use a number in (0, 100], e.g. 90")
    out["percentile"] = float(pct)
    out["penalty_weight"] = _number(data.get("penalty_weight", 1.0), "slo.penalty_weight")
    return out


def served_name(name: str) -> str:
    cleaned = NAME_RE.sub("-", name.lower()).strip("-")
    return (cleaned or "model")[:40].strip("-")


def parse_task(data: Any) -> Task:
    if not isinstance(data, dict):
        raise TaskError("task file", "must hold a mapping (a JSON object) at the top level")
    for key in data:
        if key not in TOP_KEYS:
            raise TaskError(key, f"unknown top-level key; allowed: {', '.join(sorted(TOP_KEYS))}")
    task_name = _require(data, "task_name", str, "", "a unique identifier, e.g. \"tp-sweep\"")
    model = _require(data, "model", dict, "", "e.g. {\"name\": \"tiny\", \"source\": \"generated:tiny-llama\"}")
    model_name = _require(model, "name", str, "model.", "the model id or served name")
    source = model.get("source")
    if source is not None and not isinstance(source, str):
        raise TaskError("model.source", "must be a string like generated:tiny-llama, path:/dir or hf:org/repo")
    runtime = data.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise TaskError("runtime", f"{runtime!r}; use one of {', '.join(RUNTIMES)}")

    opt = _require(data, "optimization", dict, "",
                   "e.g. {\"strategy\": \"grid_search\", \"objective\": \"minimize_latency\"}")
    strategy = opt.get("strategy", "grid_search")
    if strategy not in STRATEGIES:
        raise TaskError("optimization.strategy", f"{strategy!r}; use one of {', '.join(STRATEGIES)}")
    objective = opt.get("objective", "minimize_latency")
    if objective not in OBJECTIVES:
        raise TaskError("optimization.objective", f"{objective!r}; use one of {', '.join(OBJECTIVES)}")
    space = _space(data.get("parameters"))
    grid = math.prod(len(v) for v in space.values())
    max_iter = _int(opt.get("max_iterations", grid), "optimization.max_iterations", 1)
    timeout = _number(opt.get("timeout_per_iteration", 600), "optimization.timeout_per_iteration")
    seed = _int(opt.get("seed", 0), "optimization.seed", 0)
    patience = opt.get("early_stop_patience")
    if patience is not None:
        patience = _int(patience, "optimization.early_stop_patience", 1)
    opt_keys = ("strategy", "objective", "max_iterations", "timeout_per_iteration", "seed",
                "early_stop_patience", "pruner", "first_step_requests", "overlap_teardown")
    for key in opt:
        if key not in opt_keys:
            raise TaskError(f"optimization.{key}", f"unknown key; allowed: {', '.join(opt_keys)}")
    pruner = opt.get("pruner", "none")
    if pruner not in PRUNERS:
        raise TaskError("optimization.pruner", f"{pruner!r}; use one of {', '.join(PRUNERS)}")

    bench = data.get("benchmark") or {}
    if not isinstance(bench, dict):
        raise TaskError("benchmark", "must be a mapping")
    scen = bench.get("traffic_scenarios", ["D(128,32)"])
    if not isinstance(scen, list) or not scen:
        raise TaskError("benchmark.traffic_scenarios", "must be a non-empty list like [\"D(100,100)\"]")
    scenarios = [parse_scenario(s, f"benchmark.traffic_scenarios[{i}]") for i, s in enumerate(scen)]
    conc = bench.get("num_concurrency", [8])
    if isinstance(conc, int) and not isinstance(conc, bool):
        conc = [conc]
    if not isinstance(conc, list) or not conc:
        raise TaskError("benchmark.num_concurrency", "must be a non-empty list of whole numbers, e.g. [1, 4]")
    concurrency = [_int(c, f"benchmark.num_concurrency[{i}]", 1) for i, c in enumerate(conc)]
    requests = bench.get("num_requests", bench.get("max_requests_per_iteration", 64))
    num_requests = _int(requests, "benchmark.num_requests", 1)
    warmup = _int(bench.get("warmup_requests", 4), "benchmark.warmup_requests", 0)
    repeats = _int(bench.get("repeats", 1), "benchmark.repeats", 1)
    first_step = _int(opt.get("first_step_requests", max(1, num_requests // 4)),
                      "optimization.first_step_requests", 1)
    endpoint = bench.get("endpoint", "chat")
    if endpoint not in ("chat", "completions"):
        raise TaskError("benchmark.endpoint", f"{endpoint!r}; use chat or completions")
    metric, direction = OBJECTIVES[objective]
    slo = _slo(data.get("slo"))
    if objective == "maximize_goodput" and not slo:
        raise TaskError("slo", "maximize_goodput needs an slo section, e.g. {\"ttft_ms\": 500, \"tpot_ms\": 50}")
    return Task(
        name=served_name(task_name), raw=data, model_name=model_name, model_source=source,
        base_runtime=str(data.get("base_runtime", "vllm")), runtime=runtime, space=space,
        engine_args=_engine_args(data.get("engine_args")), strategy=STRATEGIES[strategy],
        objective=objective, metric=metric, direction=direction, max_iterations=max_iter,
        timeout_per_iteration=timeout, seed=seed, early_stop_patience=patience,
        scenarios=scenarios, concurrency=concurrency,
        additional_params=_additional(bench.get("additional_params")),
        num_requests=num_requests, warmup_requests=warmup, endpoint=endpoint, slo=slo, repeats=repeats,
        pruner=None if pruner == "none" else pruner, first_step_requests=first_step,
        overlap_teardown=_bool(opt.get("overlap_teardown", True), "optimization.overlap_teardown"),
    )


def resolve_model_source(task: Task, override: Optional[str] = None, model_dir: Optional[str] = None) -> str:
    """004 names a model directory under --model-path; we also take model.source or an override."""
    if override:
        return override
    if task.model_source:
        return task.model_source
    name = task.model_name
    if ":" in name.split("/")[0]:
        return name
    if name.startswith("/"):
        return f"path:{name}"
    if model_dir and os.path.isdir(os.path.join(model_dir, name)):
        return f"path:{os.path.join(os.path.abspath(model_dir), name)}"
    if "/" in name:
        return f"hf:{name}"
    raise TaskError("model.name", f"{name!r} is not a model source; add model.source "
                                  "(generated:tiny-llama, path:/dir, hf:org/repo) or pass --model-path DIR "
                                  f"containing {name}/")
