"""Validation and normalisation of the platform's inventory model (`llm_models`).

Pure Python, no Ansible imports: the preflight role, the vllm role (through the
`llm_models_normalize` filter) and the tests all call `normalize_models`, so an entry
is read the same way everywhere. Every error names the offending field and the fix.
"""
from __future__ import annotations

import re
from typing import Any

SOURCE_SCHEMES = ("generated", "path", "hf")
GENERATED_MODELS = ("tiny-llama",)
ENTRY_KEYS = {"name", "source", "replicas", "gpus", "vllm_args", "replica_vllm_args", "port", "env", "revision",
              "adapters"}
# A LoRA adapter is served by its base model's replicas (vLLM --lora-modules), never merged.
ADAPTER_KEYS = {"name", "source"}
ADAPTER_SCHEMES = ("path", "hf")
# DNS-1035 label: the name becomes a Kubernetes Service/route name on the kubernetes target.
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
HF_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
ARG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Flags the role sets itself; setting them per model would break routing or the cache.
RESERVED_ARGS = {"model", "served_model_name", "port", "host"}
# Built from the entry's `adapters` (vllm_server.py); max_loras and max_lora_rank stay settable.
ADAPTER_ARGS = {"lora_modules"}
MAX_REPLICAS_PER_MODEL = 64


class InventoryError(ValueError):
    """A bad inventory value: `field` is the dotted path, the message says how to fix it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_source(source: Any, field: str = "source") -> dict[str, str]:
    """Split `scheme:rest` and check the rest for its scheme."""
    if not isinstance(source, str) or ":" not in source:
        raise InventoryError(
            field,
            f"{source!r} is not a model source; use one of generated:tiny-llama, "
            "path:/abs/dir (a local HF-format model) or hf:<org>/<repo>",
        )
    scheme, _sep, rest = source.partition(":")
    if scheme not in SOURCE_SCHEMES:
        raise InventoryError(
            field,
            f"unknown source scheme {scheme!r}; use one of {', '.join(s + ':' for s in SOURCE_SCHEMES)}",
        )
    if scheme == "generated" and rest not in GENERATED_MODELS:
        raise InventoryError(field, f"unknown generated model {rest!r}; use generated:tiny-llama")
    if scheme == "path" and not rest.startswith("/"):
        raise InventoryError(field, f"path {rest!r} is not absolute; write path:/abs/dir/of/model")
    if scheme == "hf":
        repo, _sep, revision = rest.partition("@")
        if not HF_REPO_RE.match(repo):
            raise InventoryError(field, f"{rest!r} is not a Hugging Face repo id; write hf:<org>/<repo>[@revision]")
        return {"scheme": scheme, "ref": repo, "revision": revision or "main"}
    return {"scheme": scheme, "ref": rest, "revision": ""}


def _adapters(entry: dict, model: str, taken: dict[str, str]) -> list[dict[str, str]]:
    """The entry's `adapters`: [{name, source}], names unique across every model and adapter
    (`taken` maps each name seen so far to the field that holds it)."""
    where = f"llm_models[{model}].adapters"
    adapters = entry.get("adapters")
    if adapters is None:
        return []
    if not isinstance(adapters, list):
        raise InventoryError(where, "must be a list of LoRA adapters, e.g. [{name: chat-ft, source: path:/abs/dir}]")
    out = []
    for index, adapter in enumerate(adapters):
        field = f"{where}[{index}]"
        if not isinstance(adapter, dict):
            raise InventoryError(field, "must be a mapping {name, source}, e.g. {name: chat-ft, source: path:/abs/dir}")
        unknown = sorted(set(adapter) - ADAPTER_KEYS)
        if unknown:
            raise InventoryError(f"{field}.{unknown[0]}",
                                 f"unknown key; allowed keys are {', '.join(sorted(ADAPTER_KEYS))}")
        name = adapter.get("name")
        if not name:
            raise InventoryError(f"{field}.name", "is missing; every adapter needs the model name clients ask for, "
                                                  "e.g. chat-ft")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InventoryError(f"{field}.name", f"{name!r} is not a valid name; use lowercase letters, digits and "
                                                  "'-', starting with a letter")
        if name == "vllm":
            raise InventoryError(f"{field}.name", "'vllm' is reserved; pick another name")
        if name in taken:
            raise InventoryError(f"{field}.name", f"{name!r} is already the name of {taken[name]}; model and adapter "
                                                  "names share one namespace (clients pick either by `model`), "
                                                  "rename one of them")
        taken[name] = f"{field}.name"
        if "source" not in adapter:
            raise InventoryError(f"{field}.source", "is missing; use path:/abs/dir/of/adapter or "
                                                    "hf:<org>/<repo>[@revision]")
        source = adapter["source"]
        if isinstance(source, str) and source.partition(":")[0] == "generated":
            raise InventoryError(f"{field}.source", f"{source} is a base model, not a LoRA adapter; use "
                                                    "path:/abs/dir (a directory with adapter_config.json) or "
                                                    "hf:<org>/<repo>[@revision]")
        if not isinstance(source, str) or source.partition(":")[0] not in ADAPTER_SCHEMES:
            raise InventoryError(f"{field}.source", f"{source!r} is not an adapter source; use path:/abs/dir "
                                                    "(a PEFT adapter directory with adapter_config.json) or "
                                                    "hf:<org>/<repo>[@revision]")
        parsed = parse_source(source, f"{field}.source")
        out.append({"name": name, "source": source, "source_scheme": parsed["scheme"],
                    "source_ref": parsed["ref"], "revision": parsed["revision"]})
    return out


def _int_field(entry: dict, key: str, field: str, default: int, minimum: int, maximum: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise InventoryError(field, f"must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InventoryError(field, f"must be {bound}, got {value}")
    return value


def _check_args(args: Any, field: str) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise InventoryError(field, "must be a mapping of vLLM argument names to values, e.g. {max_num_seqs: 64}")
    for key, value in args.items():
        if not isinstance(key, str) or not ARG_RE.match(key):
            raise InventoryError(f"{field}.{key}", "argument names are snake_case vLLM flags, e.g. max_model_len")
        if key in RESERVED_ARGS:
            raise InventoryError(f"{field}.{key}", "is set by the vllm role; remove it from vllm_args")
        if key in ADAPTER_ARGS:
            raise InventoryError(f"{field}.{key}", "is built from the model's adapters; list each LoRA adapter "
                                                   "under adapters: [{name, source}] instead")
        if isinstance(value, (dict, list)) and key not in ("override_generation_config", "limit_mm_per_prompt"):
            raise InventoryError(f"{field}.{key}", "must be a scalar (string, number or boolean)")
    return dict(args)


def _check_gpu_memory_utilization(value: Any, field: str) -> None:
    """vLLM's share of GPU memory: a fraction in (0, 1], not a percentage."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        hint = f"; {value} looks like a percentage, write {value / 100:g}" if (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 1 < value <= 100) else ""
        raise InventoryError(field, f"must be a fraction in (0, 1], e.g. 0.9, got {value!r}{hint}")


def _max_positions(config: dict[str, Any]) -> int | None:
    for block in (config, config.get("text_config") or {}):
        value = block.get("max_position_embeddings") if isinstance(block, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def context_length_check(
    models: list[dict[str, Any]], model_dirs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """max_model_len must fit the model's max_position_embeddings, read from config.json when it
    is on disk (path: sources, or `model_dirs` {name: dir}); vLLM would refuse to start minutes
    later. Returns the models unchanged; raises naming the field."""
    import json
    import os

    for index, model in enumerate(models):
        wanted = (model.get("vllm_args") or {}).get("max_model_len")
        directory = (model_dirs or {}).get(model["name"]) or (
            model["source_ref"] if model.get("source_scheme") == "path" else None)
        if wanted is None or not directory:
            continue
        path = os.path.join(directory, "config.json")
        try:
            with open(path, encoding="utf-8") as handle:
                limit = _max_positions(json.load(handle))
        except (OSError, ValueError):
            continue  # a missing config is reported by the path-source check
        if limit is not None and isinstance(wanted, int) and wanted > limit:
            raise InventoryError(f"llm_models[{index}].vllm_args.max_model_len",
                                 f"{wanted} exceeds the model's max_position_embeddings {limit} ({path}); "
                                 f"use at most {limit}")
    return models


def normalize_models(
    models: Any,
    default_args: dict[str, Any] | None = None,
    base_port: int = 8100,
    port_stride: int = 10,
    device: str = "gpu",
    check_ports: bool = True,
) -> list[dict[str, Any]]:
    """Validate `llm_models` and return entries with every field filled in.

    Ports: entry i gets `port` (or base_port + i * port_stride) for replica 0, then +1
    per replica, so adding a replica to one model never moves another model's ports.
    """
    if not isinstance(models, list):
        raise InventoryError("llm_models", "must be a list of model entries (each with name and source)")
    normalized: list[dict[str, Any]] = []
    seen_names: dict[str, int] = {}
    # Every served name (models and adapters) -> the field holding it: one namespace for `model`.
    taken = {str(e["name"]): f"llm_models[{i}].name" for i, e in enumerate(models)
             if isinstance(e, dict) and isinstance(e.get("name"), str)}
    used_ports: dict[int, str] = {}
    for index, entry in enumerate(models):
        where = f"llm_models[{index}]"
        if not isinstance(entry, dict):
            raise InventoryError(where, "must be a mapping with at least name and source")
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise InventoryError(
                f"{where}.{unknown[0]}",
                f"unknown key; allowed keys are {', '.join(sorted(ENTRY_KEYS))}",
            )
        name = entry.get("name")
        if not name:
            raise InventoryError(f"{where}.name", "is missing; every model needs a name (lowercase, e.g. chat)")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InventoryError(
                f"{where}.name",
                f"{name!r} is not a valid name; use lowercase letters, digits and '-', starting with a letter",
            )
        if name == "vllm":
            raise InventoryError(
                f"{where}.name",
                "'vllm' is reserved (Kubernetes injects VLLM_* env vars from a Service of that name); pick another",
            )
        if name in seen_names:
            raise InventoryError(f"{where}.name",
                                 f"duplicate of llm_models[{seen_names[name]}].name; names must be unique")
        seen_names[name] = index
        adapters = _adapters(entry, name, taken)
        if "source" not in entry:
            raise InventoryError(f"{where}.source", "is missing; e.g. source: generated:tiny-llama")
        source = parse_source(entry["source"], f"{where}.source")
        replicas = _int_field(entry, "replicas", f"{where}.replicas", 1, 0, MAX_REPLICAS_PER_MODEL)
        gpus = _int_field(entry, "gpus", f"{where}.gpus", 0, 0, 16)
        first_port = _int_field(entry, "port", f"{where}.port", base_port + index * port_stride, 1024, 65535)
        ports = list(range(first_port, first_port + replicas))
        # Host ports only matter where replicas share one host (the local target).
        for port in ports if check_ports else []:
            if port > 65535:
                raise InventoryError(f"{where}.replicas", f"replica port {port} exceeds 65535; lower port or replicas")
            if port in used_ports:
                raise InventoryError(
                    f"{where}.port",
                    f"port {port} is already used by {used_ports[port]}; set a distinct port for this model",
                )
            used_ports[port] = f"{where} ({name})"
        args = dict(default_args or {})
        args.update(_check_args(entry.get("vllm_args"), f"{where}.vllm_args"))
        _check_gpu_memory_utilization(args.get("gpu_memory_utilization"), f"{where}.vllm_args.gpu_memory_utilization")
        block = args.get("block_size")
        if device == "cpu" and block is not None and (not isinstance(block, int) or block % 32):
            raise InventoryError(
                f"{where}.vllm_args.block_size",
                f"{block!r} does not work on vLLM's CPU backend (its attention needs a multiple of 32); use 32",
            )
        # Per-replica overrides, e.g. [{max_num_seqs: 4}, {}]: real fleets are unequal, and
        # the routing comparison (playbooks/compare.yml) needs replicas that differ.
        overrides = entry.get("replica_vllm_args") or []
        if not isinstance(overrides, list) or len(overrides) > replicas:
            raise InventoryError(f"{where}.replica_vllm_args",
                                 f"must be a list of at most replicas ({replicas}) mappings, one per replica")
        per_replica = [_check_args(o, f"{where}.replica_vllm_args[{i}]") for i, o in enumerate(overrides)]
        env = entry.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
            raise InventoryError(f"{where}.env", "must be a mapping of environment variable names to values")
        normalized.append(
            {
                "name": name,
                "source": entry["source"],
                "source_scheme": source["scheme"],
                "source_ref": source["ref"],
                "revision": str(entry.get("revision") or source["revision"]),
                "replicas": replicas,
                "gpus": gpus,
                "port": first_port,
                "ports": ports,
                "vllm_args": args,
                "replica_vllm_args": per_replica,
                "env": {k: str(v) for k, v in env.items()},
                "adapters": adapters,
            }
        )
    return normalized


def vllm_cli_args(args: dict[str, Any]) -> list[str]:
    """Turn {max_num_seqs: 64, enforce_eager: true} into vLLM's `--max-num-seqs 64 --enforce-eager`.

    False booleans and None are dropped (vLLM's store_true flags have no negative form
    for most options); dicts go as JSON, which vLLM parses for its JSON-typed flags.
    """
    import json

    argv: list[str] = []
    for key in sorted(args):
        value = args[key]
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (dict, list)):
            argv += [flag, json.dumps(value, sort_keys=True)]
        else:
            argv += [flag, str(value)]
    return argv


def replica_args(model: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The model's vllm_args with replica `index`'s overrides (replica_vllm_args[index])."""
    overrides = model.get("replica_vllm_args") or []
    return {**model.get("vllm_args", {}), **(overrides[index] if index < len(overrides) else {})}


def expand_replicas(models: list[dict[str, Any]], host: str = "127.0.0.1",
                    prefix: str = "vllm") -> list[dict[str, Any]]:
    """One record per replica of each normalised model: process name, port and URLs."""
    replicas = []
    for model in models:
        for index, port in enumerate(model["ports"]):
            base = f"http://{host}:{port}"
            replicas.append(
                {
                    "name": f"{prefix}-{model['name']}-{index}",
                    "model": model["name"],
                    "index": index,
                    "port": port,
                    "base_url": base,
                    "health_url": f"{base}/health",
                    "models_url": f"{base}/v1/models",
                    "vllm_args": replica_args(model, index),
                }
            )
    return replicas
