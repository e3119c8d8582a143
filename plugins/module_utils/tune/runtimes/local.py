"""Trials as supervised local vLLM processes: the same local_process code, and the same
server (vllm_server.local_server on the role's vllm_server_target and llm_models entry)
the vllm role starts on the local target, so the winner runs the way it was measured."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from typing import Any, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils import local_process, model_source
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import (
    Target,
    entry_for,
    local_server,
    server_env,
    target_from,
)

from .base import Deployment, Runtime, TrialFailure, classify_exit, diagnostic_tail
from .ports import allocate

PREFIX = "tune-"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))


def serving_python(cache: Optional[str] = None) -> str:
    """The serving venv's python, found the way the role finds it (scripts/venv.sh)."""
    env = dict(os.environ)
    if cache:
        env["LLMOPS_CACHE"] = cache
    out = subprocess.run([os.path.join(REPO_ROOT, "scripts", "venv.sh"), "path", "serving"],
                         capture_output=True, text=True, env=env, check=True, timeout=60)
    python = os.path.join(out.stdout.strip(), "bin", "python")
    if not os.path.exists(python):
        raise RuntimeError(f"serving venv {python} is missing; run `make serving` (scripts/venv.sh ensure serving)")
    return python


class LocalRuntime(Runtime):
    kind = "local"

    def __init__(self, model_source: str, state_dir: str, log_dir: str, model_cache_dir: str,
                 python: Optional[str] = None, target: Optional[Mapping[str, Any] | Target] = None,
                 model: Optional[Mapping[str, Any]] = None, port_range: tuple[int, int] = (19000, 19499),
                 stop_timeout_s: float = 15.0, served_name: str = "model") -> None:
        self.source = model_source
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.model_cache_dir = model_cache_dir
        self.python = python
        # The vllm role's vllm_server_target (device, KV cache, env, host) and the entry it
        # serves; without them (the command line) the defaults of a CPU local target.
        self.target = replace(target_from(target or {}), kind="local")
        self.model = dict(model) if model else entry_for(model_source, served_name)
        self.host = self.target.host
        self.port_range = tuple(port_range)
        self.stop_timeout_s = stop_timeout_s
        self.served_name = self.model["name"]
        self.model_dir = ""
        # The entry's LoRA adapters, resolved like the role resolves them: {name: {path, rank}}.
        self.adapters: dict[str, dict[str, Any]] = {}
        self.task = ""

    def prepare(self, task_name: str) -> list[str]:
        self.task = task_name
        self.model_dir = model_source.resolve(self.source, self.model_cache_dir)["path"]
        self.adapters = model_source.resolve_adapters(self.model)
        if not self.python:
            self.python = serving_python()
        stopped = []
        for name in local_process.list_managed(self.state_dir):
            if name.startswith(f"{PREFIX}{task_name}-"):
                spec = self._spec_for(name, [], None)
                if local_process.stop(spec, timeout_s=self.stop_timeout_s):
                    stopped.append(name)
                shutil.rmtree(spec.dir, ignore_errors=True)
        return stopped

    def _spec_for(self, name: str, argv: list[str], port: Optional[int]) -> local_process.ProcessSpec:
        health = f"http://{self.host}:{port}/health" if port else None
        return local_process.ProcessSpec(
            name=name, argv=argv, state_dir=self.state_dir, log_dir=self.log_dir,
            env=server_env(self.model, self.target), ready_url=health, port=port,
            start_retries=0, stop_timeout_s=self.stop_timeout_s)

    def argv(self, port: int, vllm_args: dict[str, Any]) -> list[str]:
        return local_server(self.model, self.target, self.model_dir, self.python or "python", port=port,
                            vllm_args=vllm_args, adapters=self.adapters)["argv"]

    def start(self, trial_id: str, vllm_args: dict[str, Any]) -> Deployment:
        port = allocate(self.port_range, host=self.host)
        name = f"{PREFIX}{self.task}-{trial_id}"
        spec = self._spec_for(name, self.argv(port, vllm_args), port)
        if os.path.exists(spec.log_file):
            os.unlink(spec.log_file)  # a resumed trial must not show the killed run's log
        try:
            local_process.start(spec)
        except RuntimeError as exc:
            raise TrialFailure("runtime_error", str(exc)) from None
        base = f"http://{self.host}:{port}"
        return Deployment(trial_id, base, self.served_name, handle=spec,
                          info={"port": port, "argv": spec.argv, "log": spec.log_file})

    def wait_ready(self, dep: Deployment, timeout_s: float) -> None:
        spec = dep.handle
        ok, reason = local_process.wait_ready(spec, [f"{dep.base_url}/health", f"{dep.base_url}/v1/models"],
                                              timeout_s)
        if ok:
            return
        tail = diagnostic_tail(local_process.log_tail(spec.log_file, 400))
        if "not ready within" in reason:
            raise TrialFailure("readiness_timeout", reason, tail)
        raise TrialFailure(classify_exit(reason, tail), reason, tail)

    def dead_reason(self, dep: Deployment) -> Optional[str]:
        spec = dep.handle
        status = local_process.read_status(spec)
        if local_process.supervisor_pid(spec) is None or status.get("state") == "fatal":
            return f"server process is gone (state {status.get('state')}, exit {status.get('last_exit_code')})"
        if status.get("restarts"):
            return f"server crashed and was restarted (exit code {status.get('last_exit_code')})"
        return None

    def logs(self, dep: Deployment, lines: int = 40) -> str:
        return diagnostic_tail(local_process.log_tail(dep.handle.log_file, 400), lines)

    def stop(self, dep: Deployment) -> None:
        spec = dep.handle
        local_process.stop(spec, timeout_s=self.stop_timeout_s)
        shutil.rmtree(spec.dir, ignore_errors=True)  # no longer ours to manage

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_source": self.source, "model_dir": self.model_dir,
                "python": self.python, "port_range": list(self.port_range)}
