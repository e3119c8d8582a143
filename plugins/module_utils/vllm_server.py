"""The one definition of a vLLM OpenAI server: its command line, environment and GPUs.

Every consumer builds its servers here: the vllm role on both targets (filters in
plugins/filter/vllm_server.py), LLaMA-Factory's serving of the merged model, the tuner's
local, docker and Kubernetes trials, and compare through the vllm role. So a trial runs
the server the role deploys, and `-e @best.yml --tags serving` deploys what was measured.
The Kubernetes container and pod around this server are in vllm_k8s_pod.py.

Inputs: one normalised llm_models entry (inventory.normalize_models) and the target facts
the vllm role collects in `vllm_server_target` (roles/vllm/tasks/target.yml). Pure Python,
no Ansible imports; every error names the field and the fix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils.inventory import parse_source, replica_args, vllm_cli_args

ENTRYPOINT = ["-m", "vllm.entrypoints.openai.api_server"]
# Every server on every target: no usage reports, and never the hub at run time (a model
# is resolved before the server starts: a local directory, the Kubernetes model cache
# filled by the download initContainer, or a volume).
BASE_ENV = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
# GiB of KV cache on vLLM's CPU backend (its GPU backend sizes the cache from
# gpu_memory_utilization instead).
CPU_KVCACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"
# vLLM accepts only these --max-lora-rank values (vllm/config/lora.py MaxLoRARanks in 0.32);
# a rank derived from the adapters is rounded up to the next one (r=4 -> 8, r=48 -> 64).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# vLLM's own default, used when no adapter's rank is known (the kubernetes target).
DEFAULT_LORA_RANK = 16
TARGET_KINDS = ("local", "kubernetes")
DEVICES = ("cpu", "gpu")


class ServerError(ValueError):
    """A server that cannot be built: `field` is the dotted path, the message says the fix."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Target:
    """Where and how servers run: the same for every model of a deployment."""

    kind: str = "local"
    device: str = "cpu"
    kvcache_space_gib: int = 1
    # Added to every server's environment (a model's own `env` goes on top).
    env: Mapping[str, str] = field(default_factory=dict)
    # Local target: the address servers listen on.
    host: str = "127.0.0.1"
    # Kubernetes target: vllm_k8s_pod.KubernetesSettings.from_facts of `kubernetes`.
    kubernetes: Mapping[str, Any] = field(default_factory=dict)
    # Model name -> kvcached.resolve() of that model ({"enabled": False} when absent).
    kvcached: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def kvcached_for(self, name: str) -> Mapping[str, Any]:
        return self.kvcached.get(name) or {"enabled": False}


TARGET_KEYS = set(Target.__dataclass_fields__)


def target_from(facts: Mapping[str, Any] | Target, where: str = "vllm_server_target") -> Target:
    """A Target from the role's `vllm_server_target` dict (or one already built)."""
    if isinstance(facts, Target):
        return facts
    if not isinstance(facts, Mapping):
        raise ServerError(where, "must be a mapping (roles/vllm/tasks/target.yml sets it)")
    unknown = sorted(set(facts) - TARGET_KEYS)
    if unknown:
        raise ServerError(f"{where}.{unknown[0]}", f"unknown key; allowed keys are {', '.join(sorted(TARGET_KEYS))}")
    kind, device = facts.get("kind", "local"), facts.get("device", "cpu")
    if kind not in TARGET_KINDS:
        raise ServerError(f"{where}.kind", f"{kind!r} is not one of {', '.join(TARGET_KINDS)} (platform_target)")
    if device not in DEVICES:
        raise ServerError(f"{where}.device", f"{device!r} is not one of {', '.join(DEVICES)} (vllm_device)")
    env = facts.get("env") or {}
    if not isinstance(env, Mapping):
        raise ServerError(f"{where}.env", "must be a mapping of environment variable names to values")
    kvcache = _int(facts.get("kvcache_space_gib", 1), f"{where}.kvcache_space_gib")
    return Target(kind=kind, device=device, kvcache_space_gib=kvcache,
                  env={str(k): str(v) for k, v in env.items()}, host=str(facts.get("host") or "127.0.0.1"),
                  kubernetes=dict(facts.get("kubernetes") or {}), kvcached=dict(facts.get("kvcached") or {}))


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServerError(where, f"must be an integer, got {value!r}") from None


def parallel_size(vllm_args: Mapping[str, Any]) -> int:
    """GPUs one server needs: tensor x pipeline parallel ranks."""
    return (_int(vllm_args.get("tensor_parallel_size", 1), "vllm_args.tensor_parallel_size")
            * _int(vllm_args.get("pipeline_parallel_size", 1), "vllm_args.pipeline_parallel_size"))


def gpu_count(model: Mapping[str, Any], device: str, vllm_args: Optional[Mapping[str, Any]] = None) -> int:
    """GPUs of one replica: the entry's `gpus`, else one per parallel rank; none on CPU."""
    if device != "gpu":
        return 0
    need = parallel_size(model.get("vllm_args", {}) if vllm_args is None else vllm_args)
    gpus = int(model.get("gpus") or 0)
    if gpus and gpus < need:
        raise ServerError(f"llm_models[{model['name']}].gpus",
                          f"{gpus} is fewer than tensor_parallel_size x pipeline_parallel_size = {need}; "
                          "raise gpus or lower the parallel sizes")
    return gpus or need


def entry_for(source: str, name: str, vllm_args: Optional[Mapping[str, Any]] = None,
              env: Optional[Mapping[str, str]] = None, gpus: int = 0) -> dict[str, Any]:
    """A normalised-shape entry for a bare source + name (the tuner's command line)."""
    parsed = parse_source(source)
    return {"name": name, "source": source, "source_scheme": parsed["scheme"], "source_ref": parsed["ref"],
            "revision": parsed["revision"], "replicas": 1, "gpus": gpus, "vllm_args": dict(vllm_args or {}),
            "replica_vllm_args": [], "env": {k: str(v) for k, v in (env or {}).items()}, "adapters": []}


def weights(model: Mapping[str, Any], target: Target, model_dir: Optional[str] = None) -> tuple[str, list[str]]:
    """Where the server reads the weights (a local directory, or on Kubernetes the source
    itself), and the flags that pin them."""
    name, scheme, ref = model["name"], model["source_scheme"], model["source_ref"]
    if target.kind == "local":
        if not model_dir:
            raise ServerError(f"llm_models[{name}].source", "is not resolved to a directory yet (llm_model_source)")
        return str(model_dir), []
    if scheme == "generated":
        raise ServerError(f"llm_models[{name}].source",
                          f"{model['source']} exists on the local target only (it is generated on the host); on "
                          "kubernetes use hf:<org>/<repo>@<revision> or path:/dir on vllm_k8s_path_volume_claim")
    if scheme == "path":
        claim = target.kubernetes.get("path_volume_claim") or ""
        mount = str(target.kubernetes.get("path_volume_mount") or "")
        if not claim or not ref.startswith(mount.rstrip("/") + "/"):
            raise ServerError(f"llm_models[{name}].source",
                              f"path sources are read from the claim vllm_k8s_path_volume_claim ({claim or 'unset'}) "
                              f"mounted at {mount}; set the claim and put the model under that mount")
        return ref, []
    pins = ["--revision", model["revision"]]
    args = model.get("vllm_args", {})
    if "tokenizer" not in args and "tokenizer_revision" not in args:
        pins += ["--tokenizer-revision", model["revision"]]
    return ref, pins


def lora_rank(rank: int, where: str) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds an adapter of rank `rank`."""
    for allowed in LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ServerError(where, f"LoRA rank {rank} exceeds the largest rank vLLM serves ({LORA_RANKS[-1]}); "
                             "retrain the adapter with a smaller r")


def adapter_k8s_dir(adapter: Mapping[str, Any], cache_mount: str) -> str:
    """Where the download init container puts an hf: adapter on the model cache (a plain
    directory per repo and revision, so the server's flag is known when the pod is rendered)."""
    repo = adapter["source_ref"].replace("/", "--")
    revision = str(adapter["revision"] or "main").replace("/", "--")
    return f"{cache_mount.rstrip('/')}/adapters/{repo}/{revision}"


def adapter_dirs(model: Mapping[str, Any], target: Target,
                 resolved: Optional[Mapping[str, Any]] = None) -> list[tuple[str, str, Optional[int]]]:
    """(name, directory, rank or None) of each of the entry's adapters as the server reads it.

    Local: `resolved` maps adapter name -> its directory, or {path, rank} as llm_model_source
    returns it (kind adapter). Kubernetes: hf: adapters on the model cache, path: adapters on
    the path volume claim (the same rule as path: models); their rank is unknown here."""
    out = []
    for index, adapter in enumerate(model.get("adapters") or []):
        name, field_ = adapter["name"], f"llm_models[{model['name']}].adapters[{index}].source"
        if target.kind == "local":
            found = (resolved or {}).get(name)
            if isinstance(found, Mapping):
                path, rank = found.get("path"), found.get("rank")
            else:
                path, rank = found, None
            if not path:
                raise ServerError(field_, "is not resolved to a directory yet (llm_model_source kind adapter)")
            out.append((name, str(path), int(rank) if rank else None))
        elif adapter["source_scheme"] == "hf":
            out.append((name, adapter_k8s_dir(adapter, str(target.kubernetes.get("model_cache_mount") or "")), None))
        else:
            claim = target.kubernetes.get("path_volume_claim") or ""
            mount = str(target.kubernetes.get("path_volume_mount") or "")
            if not claim or not adapter["source_ref"].startswith(mount.rstrip("/") + "/"):
                raise ServerError(field_, f"path adapters are read from the claim vllm_k8s_path_volume_claim "
                                          f"({claim or 'unset'}) mounted at {mount}; set the claim and put the "
                                          "adapter under that mount, or use hf:<org>/<repo>@<revision>")
            out.append((name, adapter["source_ref"], None))
    return out


def lora_args(model: Mapping[str, Any], target: Target, vllm_args: Mapping[str, Any],
              resolved: Optional[Mapping[str, Any]] = None) -> tuple[dict[str, Any], list[str]]:
    """The engine args and the --lora-modules flag of the entry's adapters (none: ({}, [])).

    max_loras: vllm_args.max_loras, else one slot per adapter (all can share a batch).
    max_lora_rank: vllm_args.max_lora_rank, else the largest adapter rank (local target, read
    from adapter_config.json) rounded up to a rank vLLM accepts, else vLLM's default 16."""
    dirs = adapter_dirs(model, target, resolved)
    if not dirs:
        return {}, []
    args: dict[str, Any] = {"enable_lora": True, "max_loras": vllm_args.get("max_loras") or len(dirs)}
    ranks = [rank for _name, _path, rank in dirs if rank]
    wanted = vllm_args.get("max_lora_rank")
    if wanted is not None:
        if ranks and isinstance(wanted, int) and wanted < max(ranks):
            raise ServerError(f"llm_models[{model['name']}].vllm_args.max_lora_rank",
                              f"{wanted} is below the rank of an adapter ({max(ranks)}); raise it to at least "
                              f"{lora_rank(max(ranks), 'max_lora_rank')} or remove it")
        args["max_lora_rank"] = wanted
    elif ranks:
        index = max(range(len(dirs)), key=lambda i: dirs[i][2] or 0)
        args["max_lora_rank"] = lora_rank(max(ranks), f"llm_models[{model['name']}].adapters[{index}].source")
        if len(ranks) < len(dirs):
            args["max_lora_rank"] = max(args["max_lora_rank"], DEFAULT_LORA_RANK)
    else:
        args["max_lora_rank"] = DEFAULT_LORA_RANK
    # name=path is vLLM's short form; a path with a comma would be read as JSON, so use JSON.
    modules = [f"{name}={path}" if "," not in path else
               json.dumps({"name": name, "path": path}, sort_keys=True) for name, path, _rank in dirs]
    return args, ["--lora-modules", *modules]


def server_args(model: Mapping[str, Any], target: Target, port: int, vllm_args: Mapping[str, Any],
                model_dir: Optional[str] = None, adapters: Optional[Mapping[str, Any]] = None) -> list[str]:
    """Everything after the entrypoint: address, weights, served name, the vLLM args, then the
    LoRA adapters (`adapters`: the local target's resolved directories, see adapter_dirs)."""
    host = target.host if target.kind == "local" else "0.0.0.0"  # noqa: S104 (the pod's own address)
    ref, pins = weights(model, target, model_dir)
    lora, modules = lora_args(model, target, vllm_args, adapters)
    return (["--host", host, "--port", str(port), "--model", ref, "--served-model-name", model["name"]]
            + pins + vllm_cli_args({**dict(vllm_args), **lora}) + modules)


def server_env(model: Mapping[str, Any], target: Target,
               cache_env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """Base, target, cache (Kubernetes), CPU KV cache, kvcached, then the model's own env."""
    env = {**BASE_ENV, **target.env, **(cache_env or {})}
    if target.device == "cpu":
        env[CPU_KVCACHE_ENV] = str(target.kvcache_space_gib)
    kv = target.kvcached_for(model["name"])
    if kv.get("enabled"):
        env.update(kv["env"])
    env.update(model.get("env") or {})
    return env


def local_server(model: Mapping[str, Any], target: Mapping[str, Any] | Target, model_dir: str,
                 python: str = "python3", replica: int = 0, port: Optional[int] = None,
                 vllm_args: Optional[Mapping[str, Any]] = None,
                 adapters: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """One local process (or docker container) of replica `replica`: argv, env, port, GPUs.
    `adapters` maps each of the entry's adapter names to its resolved directory (or {path, rank})."""
    target = target_from(target)
    if target.kind != "local":
        raise ServerError("vllm_server_target.kind", "a local server needs kind local (platform_target local)")
    args = replica_args(model, replica) if vllm_args is None else dict(vllm_args)
    port = int(port if port is not None else model["ports"][replica])
    return {
        "name": model["name"],
        "argv": [python] + ENTRYPOINT + server_args(model, target, port, args, model_dir, adapters),
        "env": server_env(model, target),
        "port": port,
        "gpus": gpu_count(model, target.device, args),
        "vllm_args": args,
    }
