"""What one benchmark run should do, validated before any traffic is sent."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Union
from urllib.parse import urlsplit

ENDPOINT_PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
}

# Body keys the engine owns: letting additional_params override them would silently change
# what is measured (e.g. stream=false makes TTFT meaningless).
_RESERVED_BODY_KEYS = {
    "model": "model",
    "messages": "prompt_tokens",
    "prompt": "prompt_tokens",
    "stream": None,
    "stream_options": None,
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "ignore_eos": "ignore_eos",
}

# Guards against typos such as concurrency: 100000 turning a benchmark into a fork bomb.
MAX_CONCURRENCY = 10000

# closed loop: `concurrency` workers; open loop: arrivals on a schedule anchored to absolute
# deadlines (constant, poisson, trace); multi-step: sweep and slo_search run several rates.
PROFILES = ("concurrency", "constant", "poisson", "throughput", "sweep", "slo_search", "trace")
OPEN_LOOP = ("constant", "poisson", "trace", "throughput")
RATE_PROFILES = ("constant", "poisson")
DATASETS = ("synthetic", "sharegpt", "alpaca", "jsonl", "shared_prefix", "multi_turn")
# Datasets the engine generates itself (no dataset_path).
GENERATED = ("synthetic", "shared_prefix", "multi_turn")


class BenchConfigError(ValueError):
    """A bad option; `field` names it and the message says how to fix it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class BenchConfig:
    base_url: str
    model: str
    endpoint: str = "chat"
    num_requests: int = 100
    # One step per value: a list (1, 4, 16, 64) draws a load curve in one run.
    concurrency: Union[int, List[int]] = 8
    warmup_requests: int = 0
    max_tokens: int = 64
    prompt_tokens: int = 128
    ignore_eos: bool = True
    seed: int = 0
    request_timeout_s: float = 60.0
    api_key: Optional[str] = field(default=None, repr=False)
    additional_params: Dict[str, Any] = field(default_factory=dict)
    run_timeout_s: float = 600.0
    # --- load profile -------------------------------------------------------------------
    profile: str = "concurrency"
    rate: Optional[Union[float, List[float]]] = None  # requests/s (constant, poisson); a list: one step each
    burstiness: float = 1.0               # gamma shape of inter-arrivals: 1 = Poisson, <1 burstier
    sweep_steps: int = 5                  # rates between synchronous and max throughput
    max_concurrency: Optional[int] = None  # open-loop in-flight cap (waiting = falling behind)
    trace_path: Optional[str] = None      # JSONL with "timestamp" (s) per request
    trace_speed: float = 1.0              # 2.0 replays the trace twice as fast
    max_dispatch_lag_ms: float = 10.0     # p99 send lag above this: the sender fell behind
    saturation_guard: bool = True
    repeats: int = 1
    min_step_s: float = 0.0               # a step keeps sending (prompts cycle) at least this long
    max_seconds: Optional[float] = None   # a step sends no new request after this many seconds
    # --- request and provenance -------------------------------------------------------------
    headers: Dict[str, str] = field(default_factory=dict)  # extra HTTP headers on every request
    label: Optional[str] = None           # free text shown in reports and the index
    # --- workload -----------------------------------------------------------------------
    scenario: Optional[str] = None        # genai-bench notation: D(128,32), N(..)/(..), U(..)/(..)
    dataset: str = "synthetic"
    dataset_path: Optional[str] = None
    tokenizer: Optional[str] = None       # local dir or tokenizer.json: exact prompt lengths
    # dataset shared_prefix: prefix_groups system prompts of prefix_tokens each; every request
    # is one group's system prompt plus its own question of prompt_tokens (workload.py).
    prefix_groups: int = 8
    prefix_tokens: int = 256
    # dataset multi_turn: conversations of `turns` user turns; each request resends the
    # conversation so far (earlier questions and stand-in answers of max_tokens) (workload.py).
    turns: int = 4
    # --- statistics, SLOs, server side ----------------------------------------------------
    percentiles: List[float] = field(default_factory=lambda: [90.0, 95.0, 99.0, 99.9])
    slo_ttft_ms: Optional[float] = None
    slo_tpot_ms: Optional[float] = None
    slo_e2e_ms: Optional[float] = None
    slo_target: float = 0.9               # share of requests that must meet every SLO
    server_metrics: bool = True           # scrape <base_url>/metrics before and after
    server_args: Dict[str, Any] = field(default_factory=dict)  # recorded, never interpreted
    prometheus_url: Optional[str] = None  # server series of every replica for the run's window

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__ so callers can pass "http://h:1/".
        object.__setattr__(self, "base_url", _check_base_url(self.base_url))
        _check_str(self.model, "model", "the served model name, e.g. model: chat")
        if self.endpoint not in ENDPOINT_PATHS:
            raise BenchConfigError(
                "endpoint", f"got {self.endpoint!r}; use one of {sorted(ENDPOINT_PATHS)}")
        _check_int(self.num_requests, "num_requests", minimum=1)
        object.__setattr__(self, "concurrency", _one_or_list(
            self.concurrency, "concurrency",
            lambda v, n: _check_int(v, n, minimum=1, maximum=MAX_CONCURRENCY) or v))
        _check_int(self.warmup_requests, "warmup_requests", minimum=0)
        _check_int(self.max_tokens, "max_tokens", minimum=1)
        _check_int(self.prompt_tokens, "prompt_tokens", minimum=1)
        _check_int(self.seed, "seed", minimum=0)
        if not isinstance(self.ignore_eos, bool):
            raise BenchConfigError("ignore_eos", f"got {self.ignore_eos!r}; use true or false")
        object.__setattr__(self, "request_timeout_s",
                           _check_seconds(self.request_timeout_s, "request_timeout_s"))
        object.__setattr__(self, "run_timeout_s",
                           _check_seconds(self.run_timeout_s, "run_timeout_s"))
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise BenchConfigError("api_key", "must be a string (or omitted)")
        _check_additional_params(self.additional_params)
        self._check_profile()
        self._check_workload()
        self._check_slos()
        if self.prometheus_url is not None:
            object.__setattr__(self, "prometheus_url", _check_url(self.prometheus_url, "prometheus_url",
                                                                  "e.g. http://127.0.0.1:9090"))

    def _check_profile(self) -> None:
        if self.profile not in PROFILES:
            raise BenchConfigError("profile", f"got {self.profile!r}; use one of {list(PROFILES)}")
        if self.profile in RATE_PROFILES and self.rate is None:
            raise BenchConfigError("rate", f"profile {self.profile} needs rate (requests/s)")
        if self.rate is not None:
            object.__setattr__(self, "rate", _one_or_list(
                self.rate, "rate", lambda v, n: _check_positive(v, n, "requests/s")))
        if isinstance(self.rate, list) and self.profile not in RATE_PROFILES:
            raise BenchConfigError("rate", f"a list of rates needs profile constant or poisson, "
                                           f"not {self.profile}")
        if isinstance(self.concurrency, list) and self.profile != "concurrency":
            raise BenchConfigError("concurrency", f"a list of concurrencies needs profile "
                                                  f"concurrency, not {self.profile}")
        if (isinstance(self.min_step_s, bool) or not isinstance(self.min_step_s, (int, float))
                or not math.isfinite(self.min_step_s) or self.min_step_s < 0):
            raise BenchConfigError("min_step_s", f"got {self.min_step_s!r}; use seconds >= 0")
        object.__setattr__(self, "min_step_s", float(self.min_step_s))
        if self.max_seconds is not None:
            object.__setattr__(self, "max_seconds", _check_seconds(self.max_seconds, "max_seconds"))
            if self.max_seconds < self.min_step_s:
                raise BenchConfigError("max_seconds", f"got {self.max_seconds:g}; it must be at "
                                                      f"least min_step_s ({self.min_step_s:g})")
        _check_headers(self.headers)
        if self.label is not None and not isinstance(self.label, str):
            raise BenchConfigError("label", "must be a string (or omitted)")
        object.__setattr__(self, "burstiness",
                           _check_positive(self.burstiness, "burstiness", "gamma shape"))
        _check_int(self.sweep_steps, "sweep_steps", minimum=1, maximum=50)
        if self.max_concurrency is not None:
            _check_int(self.max_concurrency, "max_concurrency", minimum=1,
                       maximum=MAX_CONCURRENCY)
        if self.profile == "trace" and not self.trace_path:
            raise BenchConfigError("trace_path", "profile trace needs trace_path (JSONL with "
                                                 "a timestamp per line)")
        object.__setattr__(self, "trace_speed",
                           _check_positive(self.trace_speed, "trace_speed", "speed factor"))
        object.__setattr__(self, "max_dispatch_lag_ms", _check_positive(
            self.max_dispatch_lag_ms, "max_dispatch_lag_ms", "milliseconds"))
        if not isinstance(self.saturation_guard, bool):
            raise BenchConfigError("saturation_guard", "use true or false")
        _check_int(self.repeats, "repeats", minimum=1, maximum=100)

    def _check_workload(self) -> None:
        if self.scenario is not None:
            from .scenario import ScenarioError, parse_scenario  # late: scenario imports config
            try:
                parse_scenario(self.scenario)
            except ScenarioError as exc:
                raise BenchConfigError("scenario", str(exc)) from None
        if self.dataset not in DATASETS:
            raise BenchConfigError("dataset", f"got {self.dataset!r}; use one of {list(DATASETS)}")
        _check_int(self.prefix_groups, "prefix_groups", minimum=1, maximum=100000)
        _check_int(self.prefix_tokens, "prefix_tokens", minimum=1)
        _check_int(self.turns, "turns", minimum=1, maximum=64)
        if self.dataset not in GENERATED and not self.dataset_path:
            raise BenchConfigError("dataset_path", f"dataset {self.dataset} needs dataset_path")
        for name in ("dataset_path", "tokenizer", "trace_path"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise BenchConfigError(name, "must be a non-empty path (or omitted)")

    def _check_slos(self) -> None:
        if not isinstance(self.percentiles, (list, tuple)) or not self.percentiles:
            raise BenchConfigError("percentiles", "use a non-empty list such as [90, 99, 99.9]")
        cleaned = []
        for q in self.percentiles:
            if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 100:
                raise BenchConfigError("percentiles", f"got {q!r}; each must be within (0, 100)")
            cleaned.append(float(q))
        object.__setattr__(self, "percentiles", sorted(set(cleaned)))
        for name in ("slo_ttft_ms", "slo_tpot_ms", "slo_e2e_ms"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check_positive(getattr(self, name), name, "ms"))
        if (isinstance(self.slo_target, bool) or not isinstance(self.slo_target, (int, float))
                or not 0 < self.slo_target <= 1):
            raise BenchConfigError("slo_target", f"got {self.slo_target!r}; use a share in (0, 1]")
        object.__setattr__(self, "slo_target", float(self.slo_target))
        if self.profile == "slo_search" and not self.slos:
            raise BenchConfigError("profile", "slo_search needs at least one of slo_ttft_ms, "
                                              "slo_tpot_ms, slo_e2e_ms")
        if not isinstance(self.server_metrics, bool):
            raise BenchConfigError("server_metrics", "use true or false")
        if not isinstance(self.server_args, dict):
            raise BenchConfigError("server_args", "must be a mapping (recorded as-is)")

    @property
    def slos(self) -> Dict[str, float]:
        """Configured SLOs keyed like the summary's latency blocks (ttft_ms, tpot_ms, e2e_ms)."""
        return {k[4:]: v for k, v in (("slo_ttft_ms", self.slo_ttft_ms),
                                      ("slo_tpot_ms", self.slo_tpot_ms),
                                      ("slo_e2e_ms", self.slo_e2e_ms)) if v is not None}

    @property
    def concurrency_levels(self) -> List[int]:
        return list(self.concurrency) if isinstance(self.concurrency, list) else [self.concurrency]

    @property
    def rate_levels(self) -> List[float]:
        if self.rate is None:
            return []
        return list(self.rate) if isinstance(self.rate, list) else [self.rate]

    @property
    def metrics_url(self) -> str:
        return self.base_url + "/metrics"

    @property
    def url(self) -> str:
        return self.base_url + ENDPOINT_PATHS[self.endpoint]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "BenchConfig":
        """Build from plain options (CLI, JSON); unknown keys are errors, not ignored."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise BenchConfigError(key, f"unknown option; known options are {sorted(known)}")
        for required in ("base_url", "model"):
            if data.get(required) is None:
                raise BenchConfigError(required, "is required")
        return cls(**{k: v for k, v in data.items() if v is not None})

    def to_dict(self, redact: bool = True) -> Dict[str, Any]:
        """Plain dict for results files; the API key never leaves memory unless asked."""
        data = asdict(self)
        if redact:
            data.pop("api_key", None)
            # Extra headers often carry credentials (X-Api-Key, Authorization): names only.
            data["headers"] = {k: "<redacted>" for k in self.headers}
        data["url"] = self.url
        return data


def _one_or_list(value: Any, name: str, check: Any) -> Any:
    """A number, or a list of numbers (one load step each); a one-element list is the number."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise BenchConfigError(name, "the list is empty; give one value or several")
        checked = [check(v, name) for v in value]
        if len(set(checked)) != len(checked):
            raise BenchConfigError(name, f"got {list(value)}; each value may appear once")
        return checked[0] if len(checked) == 1 else checked
    return check(value, name)


# Headers the engine sets itself: overriding them would break streaming or the key handling.
_RESERVED_HEADERS = ("content-type", "accept", "content-length", "host")


def _check_headers(headers: Any) -> None:
    if not isinstance(headers, dict):
        raise BenchConfigError("headers", "must be a mapping of header names to values")
    for key, value in headers.items():
        if not isinstance(key, str) or not key.strip() or any(c in key for c in " :\r\n"):
            raise BenchConfigError("headers", f"header name {key!r} is not a valid HTTP token")
        if key.lower() in _RESERVED_HEADERS:
            raise BenchConfigError("headers", f"{key} is set by the benchmark itself; drop it")
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise BenchConfigError("headers", f"the value of {key} must be a one-line string")


def _check_str(value: Any, name: str, hint: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise BenchConfigError(name, f"must be a non-empty string: {hint}")


def _check_int(value: Any, name: str, minimum: int, maximum: Optional[int] = None) -> None:
    # bool is an int subclass; `concurrency: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchConfigError(name, f"got {value!r}; use a whole number >= {minimum}")
    if value < minimum:
        raise BenchConfigError(name, f"got {value}; use a whole number >= {minimum}")
    if maximum is not None and value > maximum:
        raise BenchConfigError(name, f"got {value}; use at most {maximum}")


def _check_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchConfigError(name, f"got {value!r}; use a number of seconds > 0")
    if not math.isfinite(value) or value <= 0:
        raise BenchConfigError(name, f"got {value}; use a number of seconds > 0")
    return float(value)


def _check_positive(value: Any, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchConfigError(name, f"got {value!r}; use a number > 0 ({unit})")
    if not math.isfinite(value) or value <= 0:
        raise BenchConfigError(name, f"got {value}; use a number > 0 ({unit})")
    return float(value)


def _check_base_url(value: Any) -> str:
    return _check_url(value, "base_url", "e.g. http://127.0.0.1:8000")


def _check_url(value: Any, name: str, example: str) -> str:
    _check_str(value, name, example)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https"):
        raise BenchConfigError(name, f"got {value!r}; use http:// or https://, {example}")
    try:
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise BenchConfigError(name, f"got {value!r}; give host and optional port, {example}")
    if parts.query or parts.fragment:
        raise BenchConfigError(name, f"got {value!r}; drop the ?query / #fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        raise BenchConfigError(name, f"got {value!r}; drop the trailing /v1, the "
                                     "endpoint option adds /v1/... itself")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # NaN/inf are not JSON
    return value is None or isinstance(value, (str, int, bool))


def _check_additional_params(params: Any) -> None:
    if not isinstance(params, dict):
        raise BenchConfigError("additional_params", "must be a mapping of request-body fields "
                                                    "to values, e.g. {temperature: 0.0}")
    for key, value in params.items():
        name = f"additional_params.{key}"
        if not isinstance(key, str) or not key:
            raise BenchConfigError("additional_params", f"key {key!r} must be a non-empty string")
        if key in _RESERVED_BODY_KEYS:
            owner = _RESERVED_BODY_KEYS[key]
            fix = f"set the {owner} option instead" if owner else "the engine always streams"
            raise BenchConfigError(name, f"is controlled by the benchmark; {fix}")
        # Flat lists of scalars cover real knobs such as stop sequences; anything deeper is
        # almost always a templating mistake and would be sent to the server verbatim.
        if isinstance(value, list):
            if not all(_is_scalar(v) and v is not None for v in value):
                raise BenchConfigError(name, "lists may only hold strings, numbers or booleans")
        elif not _is_scalar(value):
            raise BenchConfigError(name, f"got {type(value).__name__}; use a string, number, "
                                         "boolean, null or a flat list of those")
