"""Trials as a Deployment + Service per configuration on a cluster (kubernetes client).

Manifests are rendered into render_dir first (what would be applied is on disk), applied,
readiness is waited with crash/OOM detection from pod status, the benchmark goes through
`kubectl port-forward` to a loopback port, and everything is deleted after the trial.
Only objects labelled with this tuner's task are ever deleted.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any, Mapping, Optional

import yaml

from ansible_collections.llmops.platform.plugins.module_utils.vllm_k8s_pod import k8s_server
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import (
    ServerError,
    entry_for,
    parallel_size,
    target_from,
)

from .base import Deployment, Runtime, TrialFailure
from .k8s_manifests import pod_failure, trial_manifests
from .ports import allocate


class KubernetesRuntime(Runtime):
    kind = "kubernetes"

    def __init__(self, model_source: str, target: Mapping[str, Any], model: Optional[Mapping[str, Any]] = None,
                 namespace: str = "llm-platform", render_dir: str = "rendered/tune",
                 kubeconfig: Optional[str] = None, apply: bool = True, served_name: str = "model",
                 port_range: tuple[int, int] = (19000, 19499), **_ignored: Any) -> None:
        self.source = model_source
        # The vllm role's vllm_server_target and the llm_models entry it deploys: a trial
        # pod is that Deployment's pod with the trial's flags.
        self.target = target_from(target)
        self.model = dict(model) if model else entry_for(model_source, served_name)
        self.namespace = namespace
        self.render_dir = render_dir
        self.kubeconfig = kubeconfig
        self.apply = apply
        self.served_name = self.model["name"]
        self.port_range = tuple(port_range)
        self.task = ""
        self._api: Any = None

    def trial_model(self, vllm_args: dict[str, Any]) -> dict[str, Any]:
        """The entry a trial serves: the tuned flags, and a GPU per parallel rank at least
        (the entry's gpus when it has more)."""
        gpus = max(int(self.model.get("gpus") or 0), parallel_size(vllm_args))
        return {**self.model, "vllm_args": dict(vllm_args), "gpus": gpus}

    def render(self, trial_id: str, vllm_args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        try:
            objs = trial_manifests(self.task, trial_id, self.namespace, self.trial_model(vllm_args),
                                   self.target, vllm_args)
        except ServerError as exc:
            raise TrialFailure("runtime_error", str(exc)) from None
        os.makedirs(self.render_dir, exist_ok=True)
        path = os.path.join(self.render_dir, f"{self.task}-{trial_id}.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(objs, handle, sort_keys=False)
        return path, objs

    def _clients(self) -> Any:
        if self._api is None:
            from kubernetes import client, config
            config.load_kube_config(config_file=self.kubeconfig)
            self._api = (client.AppsV1Api(), client.CoreV1Api())
        return self._api

    def _selector(self, trial_id: Optional[str] = None) -> str:
        sel = f"llmops.platform/tuner={self.task}"
        return sel + (f",llmops.platform/trial={trial_id}" if trial_id else "")

    def prepare(self, task_name: str) -> list[str]:
        self.task = task_name
        # A source the cluster cannot serve (generated:, path: off the models volume) fails
        # the sweep here, naming the field, instead of every trial.
        k8s_server(self.model, self.target)
        if not self.apply:
            return []
        apps, core = self._clients()
        stopped = []
        for dep in apps.list_namespaced_deployment(self.namespace, label_selector=self._selector()).items:
            apps.delete_namespaced_deployment(dep.metadata.name, self.namespace)
            stopped.append(dep.metadata.name)
        for svc in core.list_namespaced_service(self.namespace, label_selector=self._selector()).items:
            core.delete_namespaced_service(svc.metadata.name, self.namespace)
        return stopped

    def start(self, trial_id: str, vllm_args: dict[str, Any]) -> Deployment:
        path, objs = self.render(trial_id, vllm_args)
        info = {"manifest": path, "name": objs[0]["metadata"]["name"]}
        pod_port = objs[1]["spec"]["ports"][0]["port"]
        if not self.apply:
            raise TrialFailure("runtime_error", f"rendered {path}; apply is off, nothing to benchmark")
        apps, core = self._clients()
        try:
            apps.create_namespaced_deployment(self.namespace, objs[0])
            core.create_namespaced_service(self.namespace, objs[1])
        except Exception as exc:  # noqa: BLE001 - API errors are trial failures
            raise TrialFailure("runtime_error", f"apply failed: {exc}") from None
        port = allocate(self.port_range)
        forward = subprocess.Popen(  # noqa: S603 - fixed argv, our own names
            ["kubectl", "port-forward", "-n", self.namespace, f"svc/{info['name']}", f"{port}:{pod_port}",
             "--address", "127.0.0.1"] + (["--kubeconfig", self.kubeconfig] if self.kubeconfig else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return Deployment(trial_id, f"http://127.0.0.1:{port}", self.served_name,
                          handle={"name": info["name"], "forward": forward}, info={**info, "port": port})

    def _pods(self, dep: Deployment) -> list[Any]:
        _apps, core = self._clients()
        return core.list_namespaced_pod(self.namespace, label_selector=self._selector(dep.trial_id)).items

    def dead_reason(self, dep: Deployment) -> Optional[str]:
        for pod in self._pods(dep):
            failure = pod_failure(_camel(pod.to_dict().get("status") or {}))
            if failure:
                return f"{failure[0]}: {failure[1]}"
        return None

    def wait_ready(self, dep: Deployment, timeout_s: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for pod in self._pods(dep):
                status = _camel(pod.to_dict().get("status") or {})
                failure = pod_failure(status)
                if failure:
                    raise TrialFailure(failure[0], failure[1], self.logs(dep))
            try:
                with urllib.request.urlopen(dep.base_url + "/v1/models", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(2.0)
        raise TrialFailure("readiness_timeout", f"not ready within {timeout_s:.0f}s", self.logs(dep))

    def logs(self, dep: Deployment, lines: int = 40) -> str:
        try:
            _apps, core = self._clients()
            pods = self._pods(dep)
            if pods:
                return core.read_namespaced_pod_log(pods[0].metadata.name, self.namespace, tail_lines=lines)
        except Exception:  # noqa: BLE001 - logs are best effort
            pass
        return ""

    def stop(self, dep: Deployment) -> None:
        forward = dep.handle.get("forward")
        if forward and forward.poll() is None:
            forward.terminate()
            forward.wait(timeout=10)
        apps, core = self._clients()
        for delete in (apps.delete_namespaced_deployment, core.delete_namespaced_service):
            try:
                delete(dep.handle["name"], self.namespace)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def describe(self) -> dict[str, Any]:
        image = self.target.kubernetes.get("image")
        return {"kind": self.kind, "image": image, "namespace": self.namespace, "render_dir": self.render_dir,
                "kubectl": shutil.which("kubectl") or "missing"}


def _camel(status: dict[str, Any]) -> dict[str, Any]:
    """The python client's to_dict() uses snake_case; pod_failure reads API (camelCase) keys."""
    def conv(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {_key(k): conv(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [conv(v) for v in obj]
        return obj

    def _key(k: str) -> str:
        head, *rest = k.split("_")
        return head + "".join(w.title() for w in rest)

    return conv(status)
