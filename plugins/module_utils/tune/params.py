"""Tunable parameters: task-file names -> vLLM flags, value checks, known-infeasible regions.

Unknown names are errors (a typo must not silently tune nothing). 004's SGLang-style names
(tp_size, mem_frac) are accepted as aliases so its task files run unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import parallel_size

from .errors import TaskError


@dataclass(frozen=True)
class Param:
    name: str           # vLLM engine-arg name (snake_case); the flag is --name-with-dashes
    kind: type          # int, float, bool or str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    gpu_only: bool = False  # no effect on vLLM's CPU backend (still passed, noted in results)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_PARAMS = [
    Param("tensor_parallel_size", int, 1, 64),
    Param("pipeline_parallel_size", int, 1, 64),
    Param("data_parallel_size", int, 1, 64),
    Param("gpu_memory_utilization", float, 0.05, 1.0, gpu_only=True),
    Param("max_num_seqs", int, 1, 65536),
    Param("max_num_batched_tokens", int, 1, 10_000_000),
    Param("max_model_len", int, 16, 10_000_000),
    Param("block_size", int, 1, 1024),
    Param("enable_chunked_prefill", bool),
    Param("enable_prefix_caching", bool),
    Param("enforce_eager", bool),
    Param("dtype", str),
    Param("kv_cache_dtype", str),
    Param("quantization", str),
    Param("swap_space", float, 0, 1024),
    Param("cpu_offload_gb", float, 0, 1024),
    Param("max_num_partial_prefills", int, 1, 1024),
    Param("long_prefill_token_threshold", int, 0, 10_000_000),
    Param("scheduling_policy", str),
    Param("async_scheduling", bool),
    Param("num_scheduler_steps", int, 1, 64),
    Param("max_seq_len_to_capture", int, 1, 10_000_000),
]
PARAMS: dict[str, Param] = {p.name: p for p in _PARAMS}
ALIASES = {
    "tp_size": "tensor_parallel_size",
    "tp": "tensor_parallel_size",
    "pp_size": "pipeline_parallel_size",
    "dp_size": "data_parallel_size",
    "mem_frac": "gpu_memory_utilization",
    "mem_fraction_static": "gpu_memory_utilization",
    "max_running_requests": "max_num_seqs",
    "chunked_prefill_size": "max_num_batched_tokens",
    "context_length": "max_model_len",
}
# Set by the runtime itself; tuning them would break addressing of the trial server.
RESERVED = {"model", "served_model_name", "host", "port"}


def canonical_name(name: Any, field: str) -> str:
    if not isinstance(name, str):
        raise TaskError(field, f"parameter names are strings, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key in RESERVED:
        raise TaskError(field, f"{name!r} is set by the tuner's runtime; remove it from parameters")
    key = ALIASES.get(key, key)
    if key not in PARAMS:
        known = ", ".join(sorted(PARAMS))
        raise TaskError(field, f"unknown parameter {name!r}; tunable vLLM parameters are: {known} "
                               f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


def check_value(param: Param, value: Any, field: str) -> Any:
    """Coerce and bound one candidate value; the error says what type is expected."""
    if param.kind is bool:
        if isinstance(value, bool):
            return value
        raise TaskError(field, f"{value!r} is not a boolean; write true or false (not a string)")
    if param.kind is str:
        if isinstance(value, str) and value:
            return value
        raise TaskError(field, f"{value!r} is not a non-empty string")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (numbers must not be quoted)" if isinstance(value, str) else ""
        raise TaskError(field, f"{value!r} is not a number{hint}")
    if param.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise TaskError(field, f"{value!r} must be a whole number")
        value = int(value)
    else:
        value = float(value)
    if param.minimum is not None and value < param.minimum:
        raise TaskError(field, f"{value!r} is below the minimum {param.minimum:g}")
    if param.maximum is not None and value > param.maximum:
        raise TaskError(field, f"{value!r} is above the maximum {param.maximum:g}")
    return value


# Regions known to fail before a server is even started: (reason, predicate). The Bayesian
# sampler receives them as a constraint and grid/random skip them, so no trial is wasted.
Constraint = Callable[[dict[str, Any]], Optional[str]]


def _cpu_block_size(cfg: dict[str, Any]) -> Optional[str]:
    block = cfg.get("block_size")
    if block is not None and block % 32:
        return f"block_size {block} is not a multiple of 32 (vLLM CPU attention)"
    return None


def _batched_vs_seqs(cfg: dict[str, Any]) -> Optional[str]:
    tokens, seqs = cfg.get("max_num_batched_tokens"), cfg.get("max_num_seqs")
    if tokens is not None and seqs is not None and tokens < seqs:
        return f"max_num_batched_tokens {tokens} < max_num_seqs {seqs} (vLLM refuses to start)"
    return None


def _unchunked_tokens(cfg: dict[str, Any]) -> Optional[str]:
    tokens, length = cfg.get("max_num_batched_tokens"), cfg.get("max_model_len")
    if cfg.get("enable_chunked_prefill") is False and tokens is not None and length is not None and tokens < length:
        return f"max_num_batched_tokens {tokens} < max_model_len {length} without chunked prefill (vLLM refuses)"
    return None


def _parallel_fits(gpus: int) -> Constraint:
    def check(cfg: dict[str, Any]) -> Optional[str]:
        need = parallel_size(cfg)
        if gpus and need > gpus:
            return f"tensor x pipeline parallel {need} exceeds the {gpus} GPU(s) available"
        return None
    return check


def constraints(device: str, gpus: int) -> list[Constraint]:
    rules: list[Constraint] = [_batched_vs_seqs, _unchunked_tokens, _parallel_fits(gpus)]
    if device == "cpu":
        rules.append(_cpu_block_size)
    return rules


def infeasible_reason(cfg: dict[str, Any], rules: list[Constraint]) -> Optional[str]:
    for rule in rules:
        reason = rule(cfg)
        if reason:
            return reason
    return None
