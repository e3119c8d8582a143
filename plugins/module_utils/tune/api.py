"""One call for every face (module, CLI, tests): task file -> sweep -> written outputs."""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import entry_for

from .errors import TaskError
from .lock import RunLock
from .output import best_snippet, write_outputs
from .runtimes import make_runtime
from .sweep import SweepOptions, run_sweep
from .task import Task, load_task_file, parse_task, resolve_model_source

CPU_BASE_ARGS = {"dtype": "bfloat16", "block_size": 32}


def load(task: Any) -> Task:
    return load_task_file(task) if isinstance(task, str) else parse_task(task)


def tune(task: Any, output_dir: str, runtime: Optional[str] = None, *,
         model_source: Optional[str] = None, model_path: Optional[str] = None,
         runtime_options: Optional[dict[str, Any]] = None, device: str = "cpu", gpus: int = 0,
         base_args: Optional[dict[str, Any]] = None, include_default: bool = True,
         restart: bool = False, model_name: Optional[str] = None,
         models: Optional[list[dict[str, Any]]] = None, model: Optional[dict[str, Any]] = None,
         target: Optional[dict[str, Any]] = None,
         log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """`model` (a normalised llm_models entry) and `target` (the vllm role's
    vllm_server_target) make every trial the server the role deploys, with the trial's flags."""
    spec = load(task)
    source = resolve_model_source(spec, model_source, model_path)
    kind = runtime or spec.runtime or "local"
    name = model_name or (model or {}).get("name") or spec.name
    options = dict(runtime_options or {})
    home = os.environ.get("LLMOPS_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "llmops")
    if kind in ("local", "docker"):
        options.setdefault("model_cache_dir", os.path.join(home, "models"))
    if kind == "local":
        options.setdefault("state_dir", os.path.join(home, "run"))
        options.setdefault("log_dir", os.path.join(home, "logs"))
    if kind == "docker" and not options.get("image"):
        raise TaskError("runtime", "the docker runtime needs a vLLM image (--image, llm_sweep_image)")
    if kind == "kubernetes" and not target:
        raise TaskError("runtime", "the kubernetes runtime builds each trial pod as the vllm role builds the "
                                   "model's Deployment: run it through playbooks/tune.yml (platform_target "
                                   "kubernetes), which passes the role's vllm_server_target")
    entry = dict(model) if model else entry_for(source, name)
    rt = make_runtime(kind, model_source=source, model=entry, target=target or {"kind": "local", "device": device},
                      **options)
    base = dict(CPU_BASE_ARGS if device == "cpu" and base_args is None else (base_args or {}))
    opts = SweepOptions(output_dir=output_dir, runtime=rt, device=device, gpus=gpus, base_args=base,
                        include_default=include_default, restart=restart, log=log)
    # The lock covers the outputs too: a second run must not overwrite them half-way.
    with RunLock(output_dir) as lock:
        note = lock.describe_takeover()
        if note:
            log(note)
        results = run_sweep(spec, opts)
        snippet = best_snippet(results, name, source, models, gpus)
        if snippet:
            # The snippet must pass the same validation the vllm role applies, or it is useless.
            normalize_models(snippet["llm_models"], device=device)
        results["best_snippet"] = snippet
        results["paths"] = write_outputs(results, output_dir, snippet)
    return results
