"""Trials as Docker containers through the Docker SDK (004's docker mode, kept honest).

`container_spec` is a pure function (unit-tested): command as a list, GPUs as device
requests (never CUDA_VISIBLE_DEVICES, which conflicts with them), the model directory
mounted read-only at /model, the port published on loopback only, labels that mark the
container as this tuner's, and auto-remove so nothing is left behind. Because an
auto-removed container takes its logs with it, logs are captured while it runs.
"""
from __future__ import annotations

import time
from typing import Any, Optional

from ansible_collections.llmops.platform.plugins.module_utils import model_source
from ansible_collections.llmops.platform.plugins.module_utils.vllm_command import ENTRYPOINT, local_env, server_args

from .base import Deployment, Runtime, TrialFailure, classify_exit, diagnostic_tail
from .ports import allocate

LABEL_TUNER = "llmops.platform/tuner"
LABEL_TRIAL = "llmops.platform/trial"
CONTAINER_PORT = 8000
MODEL_MOUNT = "/model"


def container_spec(image: str, task: str, trial_id: str, served_name: str, model_dir: str, host_port: int,
                   vllm_args: dict[str, Any], gpu_ids: list[str], python: str = "python3",
                   host: str = "127.0.0.1", kvcache_space_gib: int = 1, shm_size: str = "2g",
                   env: Optional[dict[str, str]] = None,
                   volumes: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Keyword arguments for docker.containers.run (device_requests as plain dicts;
    `to_sdk` turns them into docker.types.DeviceRequest)."""
    args = server_args(MODEL_MOUNT, served_name, "0.0.0.0", CONTAINER_PORT, vllm_args)  # noqa: S104 (inside the container)
    environment = local_env(kvcache_space_gib, env)
    if gpu_ids:
        environment.pop("VLLM_CPU_KVCACHE_SPACE", None)
    spec: dict[str, Any] = {
        "image": image,
        "entrypoint": [python, *ENTRYPOINT],
        "command": args[len(ENTRYPOINT):],
        "name": f"tune-{task}-{trial_id}",
        "detach": True,
        "auto_remove": True,
        "labels": {LABEL_TUNER: task, LABEL_TRIAL: trial_id, "app.kubernetes.io/managed-by": "llmops-tune"},
        "ports": {f"{CONTAINER_PORT}/tcp": (host, host_port)},
        # Extra read-only mounts (host path -> container path), e.g. a prebuilt venv.
        "volumes": {model_dir: {"bind": MODEL_MOUNT, "mode": "ro"},
                    **{src: {"bind": dst, "mode": "ro"} for src, dst in (volumes or {}).items()}},
        "environment": environment,
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
                 log_dir: str = "", gpu_ids: Optional[list[str]] = None, host: str = "127.0.0.1",
                 port_range: tuple[int, int] = (19000, 19499), kvcache_space_gib: int = 1,
                 served_name: str = "model", python: str = "python3", client: Any = None,
                 stop_timeout_s: int = 10, env: Optional[dict[str, str]] = None,
                 volumes: Optional[dict[str, str]] = None) -> None:
        self.source = model_source
        self.image = image
        self.model_cache_dir = model_cache_dir
        self.gpu_ids = list(gpu_ids or [])
        self.host = host
        self.port_range = tuple(port_range)
        self.kvcache = kvcache_space_gib
        self.served_name = served_name
        self.python = python
        self.client = client
        self.stop_timeout_s = stop_timeout_s
        self.extra_env = env or {}
        self.volumes = volumes or {}
        self.task = ""
        self.model_dir = ""
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
        client = self._docker()
        stopped = []
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_TUNER}={task_name}"}):
            stopped.append(container.name)
            self._remove(container)
        return stopped

    def gpus_for(self, vllm_args: dict[str, Any]) -> list[str]:
        need = int(vllm_args.get("tensor_parallel_size", 1)) * int(vllm_args.get("pipeline_parallel_size", 1))
        if not self.gpu_ids:
            return []
        if need > len(self.gpu_ids):
            raise TrialFailure("runtime_error", f"needs {need} GPUs, {len(self.gpu_ids)} available")
        return self.gpu_ids[:need]  # trials run one at a time, so the first N are free

    def start(self, trial_id: str, vllm_args: dict[str, Any]) -> Deployment:
        port = allocate(self.port_range, host=self.host)
        spec = container_spec(self.image, self.task, trial_id, self.served_name, self.model_dir, port,
                              vllm_args, self.gpus_for(vllm_args), self.python, self.host, self.kvcache,
                              env=self.extra_env, volumes=self.volumes)
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
