"""Trials as Docker containers through the Docker SDK.

`container_spec` is a pure function (unit-tested): the server is vllm_server.local_server
of the role's entry inside the container (model at /model, port 8000), command as a list, GPUs as device
requests (never CUDA_VISIBLE_DEVICES, which conflicts with them), the model directory
mounted read-only at /model, the port published on loopback only, labels that mark the
container as this tuner's, and auto-remove so nothing is left behind. Because an
auto-removed container takes its logs with it, logs are captured while it runs.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils import model_source
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import (
    ENTRYPOINT,
    Target,
    entry_for,
    local_server,
    parallel_size,
    target_from,
)

from .base import Deployment, Runtime, TrialFailure, classify_exit, diagnostic_tail
from .ports import allocate

LABEL_TUNER = "llmops.platform/tuner"
LABEL_TRIAL = "llmops.platform/trial"
CONTAINER_PORT = 8000
MODEL_MOUNT = "/model"
# LoRA adapters: each resolved directory is mounted read-only at ADAPTER_MOUNT/<name>.
ADAPTER_MOUNT = "/adapters"


def container_target(target: Target, gpu_ids: list[str]) -> Target:
    """The server's target inside the container: all addresses, GPUs when devices are given."""
    return replace(target, kind="local", host="0.0.0.0", device="gpu" if gpu_ids else "cpu")  # noqa: S104


def container_spec(image: str, task: str, trial_id: str, model: Mapping[str, Any], target: Target,
                   model_dir: str, host_port: int, vllm_args: dict[str, Any], gpu_ids: list[str],
                   python: str = "python3", shm_size: str = "2g",
                   volumes: Optional[dict[str, str]] = None,
                   adapters: Optional[Mapping[str, Mapping[str, Any]]] = None) -> dict[str, Any]:
    """Keyword arguments for docker.containers.run (device_requests as plain dicts;
    `to_sdk` turns them into docker.types.DeviceRequest). `adapters`: the entry's LoRA
    adapters resolved on the host, {name: {path, rank}}."""
    adapters = dict(adapters or {})
    inside = {name: {"path": f"{ADAPTER_MOUNT}/{name}", "rank": found.get("rank")} for name, found in adapters.items()}
    server = local_server(model, container_target(target, gpu_ids), MODEL_MOUNT, python, port=CONTAINER_PORT,
                          vllm_args=vllm_args, adapters=inside)
    entrypoint_len = 1 + len(ENTRYPOINT)
    spec: dict[str, Any] = {
        "image": image,
        "entrypoint": server["argv"][:entrypoint_len],
        "command": server["argv"][entrypoint_len:],
        "name": f"tune-{task}-{trial_id}",
        "detach": True,
        "auto_remove": True,
        "labels": {LABEL_TUNER: task, LABEL_TRIAL: trial_id, "app.kubernetes.io/managed-by": "llmops-tune"},
        "ports": {f"{CONTAINER_PORT}/tcp": (target.host, host_port)},
        # Extra read-only mounts (host path -> container path), e.g. a prebuilt venv.
        "volumes": {model_dir: {"bind": MODEL_MOUNT, "mode": "ro"},
                    **{str(found["path"]): {"bind": inside[name]["path"], "mode": "ro"}
                       for name, found in adapters.items()},
                    **{src: {"bind": dst, "mode": "ro"} for src, dst in (volumes or {}).items()}},
        "environment": server["env"],
        "shm_size": shm_size,
        "device_requests": ([{"device_ids": list(gpu_ids), "capabilities": [["gpu"]], "driver": "nvidia"}]
                            if gpu_ids else []),
    }
    return spec


def to_sdk(spec: dict[str, Any]) -> dict[str, Any]:
    import docker

    out = dict(spec)
    out["device_requests"] = [docker.types.DeviceRequest(**req) for req in spec["device_requests"]] or None
    return out


class DockerRuntime(Runtime):
    kind = "docker"

    def __init__(self, model_source: str, image: str, model_cache_dir: str = "", state_dir: str = "",
                 log_dir: str = "", gpu_ids: Optional[list[str]] = None,
                 target: Optional[Mapping[str, Any] | Target] = None, model: Optional[Mapping[str, Any]] = None,
                 port_range: tuple[int, int] = (19000, 19499), served_name: str = "model",
                 python: str = "python3", client: Any = None, stop_timeout_s: int = 10,
                 volumes: Optional[dict[str, str]] = None) -> None:
        self.source = model_source
        self.image = image
        self.model_cache_dir = model_cache_dir
        self.gpu_ids = list(gpu_ids or [])
        # KV cache, env and the address to publish on come from the role's target.
        self.target = target_from(target or {"kind": "local"})
        self.model = dict(model) if model else entry_for(model_source, served_name)
        self.host = self.target.host
        self.port_range = tuple(port_range)
        self.served_name = self.model["name"]
        self.python = python
        self.client = client
        self.stop_timeout_s = stop_timeout_s
        self.volumes = volumes or {}
        self.task = ""
        self.model_dir = ""
        self.adapters: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, str] = {}

    def _docker(self) -> Any:
        if self.client is None:
            import docker
            try:
                self.client = docker.from_env()
                self.client.ping()
            except Exception as exc:  # noqa: BLE001 - docker raises many types for "no daemon"
                raise RuntimeError(f"docker runtime: no Docker daemon reachable ({exc}); start dockerd "
                                   "or use --runtime local") from None
        return self.client

    def prepare(self, task_name: str) -> list[str]:
        self.task = task_name
        self.model_dir = model_source.resolve(self.source, self.model_cache_dir)["path"]
        self.adapters = model_source.resolve_adapters(self.model)
        client = self._docker()
        stopped = []
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_TUNER}={task_name}"}):
            stopped.append(container.name)
            self._remove(container)
        return stopped

    def gpus_for(self, vllm_args: dict[str, Any]) -> list[str]:
        need = parallel_size(vllm_args)
        if not self.gpu_ids:
            return []
        if need > len(self.gpu_ids):
            raise TrialFailure("runtime_error", f"needs {need} GPUs, {len(self.gpu_ids)} available")
        return self.gpu_ids[:need]  # trials run one at a time, so the first N are free

    def start(self, trial_id: str, vllm_args: dict[str, Any]) -> Deployment:
        port = allocate(self.port_range, host=self.host)
        spec = container_spec(self.image, self.task, trial_id, self.model, self.target, self.model_dir, port,
                              vllm_args, self.gpus_for(vllm_args), self.python, volumes=self.volumes,
                              adapters=self.adapters)
        try:
            container = self._docker().containers.run(**to_sdk(spec))
        except Exception as exc:  # noqa: BLE001 - image missing, bad device request, ...
            raise TrialFailure("startup_crash", f"container did not start: {exc}") from None
        return Deployment(trial_id, f"http://{self.host}:{port}", self.served_name, handle=container,
                          info={"port": port, "container": spec["name"], "image": self.image,
                                "argv": spec["entrypoint"] + spec["command"]})

    def _state(self, dep: Deployment) -> dict[str, Any]:
        try:
            dep.handle.reload()
            self._logs[dep.trial_id] = dep.handle.logs(tail=400).decode("utf-8", "replace")
            return dep.handle.attrs.get("State", {})
        except Exception:  # noqa: BLE001 - NotFound: auto-removed after it exited
            return {"Status": "removed"}

    def dead_reason(self, dep: Deployment) -> Optional[str]:
        state = self._state(dep)
        if state.get("Status") in ("running", "created", "restarting"):
            return None
        oom = " (OOM killed)" if state.get("OOMKilled") else ""
        return f"container {state.get('Status')}, exit code {state.get('ExitCode', '?')}{oom}"

    def wait_ready(self, dep: Deployment, timeout_s: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = self.dead_reason(dep)
            if dead:
                tail = self.logs(dep)
                raise TrialFailure("oom" if "OOM" in dead else classify_exit(dead, tail),
                                   f"exited before it became ready: {dead}", tail)
            try:
                for path in ("/health", "/v1/models"):
                    with urllib.request.urlopen(dep.base_url + path, timeout=2) as resp:  # noqa: S310 (loopback)
                        if resp.status != 200:
                            raise OSError(resp.status)
                return
            except OSError:
                time.sleep(1.0)
        raise TrialFailure("readiness_timeout", f"not ready within {timeout_s:.0f}s", self.logs(dep))

    def logs(self, dep: Deployment, lines: int = 40) -> str:
        return diagnostic_tail(self._logs.get(dep.trial_id, ""), lines)

    def _remove(self, container: Any) -> None:
        try:
            container.stop(timeout=self.stop_timeout_s)
        except Exception:  # noqa: BLE001 - already gone
            pass
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001 - auto_remove got there first
            pass

    def stop(self, dep: Deployment) -> None:
        self._state(dep)  # keep the last logs before auto-remove deletes them
        self._remove(dep.handle)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "image": self.image, "model_source": self.source, "gpu_ids": self.gpu_ids}
