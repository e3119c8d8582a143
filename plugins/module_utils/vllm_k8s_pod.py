"""The Kubernetes pod of one vLLM server (vllm_server.py builds the server itself).

The vllm role's Deployment (roles/vllm/templates/kubernetes/model.yaml.j2), LLaMA-Factory's
inference Deployment and the tuner's trial Deployments all take their pod template from
`k8s_server`, so they differ only in names, labels and the tuned flags (a render test
holds the tuner to that). Pure Python, no Ansible imports.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils import kvcached
from ansible_collections.llmops.platform.plugins.module_utils.k8s import security
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import (
    ENTRYPOINT,
    ServerError,
    Target,
    adapter_k8s_dir,
    gpu_count,
    server_args,
    server_env,
    target_from,
)

CONTAINER_NAME = "vllm"
PYTHON = "python3"
# Writable caches for any uid: vLLM's images run as root by default, the pods as
# vllm_k8s_run_as_user, with a read-only root filesystem: everything vLLM, torch, triton and
# numba write goes under /cache or /tmp (emptyDirs).
CACHE_MOUNT = "/cache"
CACHE_ENV = {"HOME": "/cache/home", "XDG_CACHE_HOME": "/cache", "VLLM_CACHE_ROOT": "/cache/vllm",
             "NUMBA_CACHE_DIR": "/cache/numba"}
# The ConfigMap with roles/vllm/files/download_model.py (roles/vllm/templates/kubernetes/model-cache.yaml.j2).
DOWNLOAD_CONFIGMAP = "llm-model-download"
DOWNLOAD_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
STARTUP_PERIOD_S = 10
PROBE_TIMEOUT_S = 5


@dataclass(frozen=True)
class KubernetesSettings:
    """The vllm role's vllm_k8s_* settings (roles/vllm/defaults/main.yml), one field each."""

    image: str
    image_pull_policy: str
    image_pull_secrets: list
    port: int
    model_cache_claim: str
    model_cache_mount: str
    path_volume_claim: str
    path_volume_mount: str
    hf_token_secret: str
    run_as_user: Optional[int]
    resources: dict
    shm_size: str
    startup_timeout_s: int
    readiness_period_s: int
    liveness_period_s: int
    liveness_timeout_s: int
    liveness_failure_threshold: int
    prestop_sleep_s: int
    termination_grace_s: int
    node_selector: dict
    gpu_node_selector: dict
    gpu_tolerations: list
    # The Hub API the download init container reads (HF_ENDPOINT): the offline mirror's, or ""
    # for huggingface.co. Optional in the facts (callers that predate the mirror omit it).
    hf_endpoint: str = ""

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any], where: str = "vllm_server_target.kubernetes") -> "KubernetesSettings":
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in facts and n not in OPTIONAL_FIELDS]
        unknown = sorted(set(facts) - set(names))
        if missing or unknown:
            key = (missing or unknown)[0]
            raise ServerError(f"{where}.{key}", ("is missing" if missing else "is unknown")
                              + f"; the keys are {', '.join(names)} (roles/vllm/tasks/target.yml)")
        values = {name: facts[name] for name in names if name in facts}
        for name in INT_FIELDS:
            if values[name] is None and name == "run_as_user":
                continue  # null keeps the image's user
            try:
                values[name] = int(values[name])
            except (TypeError, ValueError):
                raise ServerError(f"{where}.{name}", f"must be an integer, got {values[name]!r}") from None
        return cls(**values)


# Settings a caller may leave out (they have a default).
OPTIONAL_FIELDS = ("hf_endpoint",)
# Templated values may arrive as strings; these are numbers in the pod.
INT_FIELDS = ("port", "run_as_user", "startup_timeout_s", "readiness_period_s", "liveness_period_s",
              "liveness_timeout_s", "liveness_failure_threshold", "prestop_sleep_s", "termination_grace_s")


def probes(settings: KubernetesSettings) -> dict[str, dict[str, Any]]:
    """Startup covers the weights load (minutes); readiness takes a pod out of the Service and
    the router's DNS at once; liveness only restarts a server that stopped answering for
    period x threshold (a pod busy under load answers slowly, it is not dead)."""
    health = {"path": "/health", "port": "http"}
    return {
        "startupProbe": {"httpGet": dict(health), "periodSeconds": STARTUP_PERIOD_S,
                         "timeoutSeconds": PROBE_TIMEOUT_S,
                         "failureThreshold": math.ceil(settings.startup_timeout_s / STARTUP_PERIOD_S)},
        "readinessProbe": {"httpGet": dict(health), "periodSeconds": settings.readiness_period_s,
                           "timeoutSeconds": PROBE_TIMEOUT_S, "failureThreshold": 3},
        "livenessProbe": {"httpGet": dict(health), "periodSeconds": settings.liveness_period_s,
                          "timeoutSeconds": settings.liveness_timeout_s,
                          "failureThreshold": settings.liveness_failure_threshold},
    }


def container_security(settings: KubernetesSettings) -> dict[str, Any]:
    """The platform's container security context (k8s/security.py) for every container of the
    pod; runAsNonRoot unless vllm_k8s_run_as_user is null (the image's user, the operator's call)."""
    return security.container_security_context(read_only_root=True, non_root=settings.run_as_user is not None)


def resources(settings: KubernetesSettings, gpus: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(settings.resources))
    if gpus > 0:
        for part in ("requests", "limits"):
            out.setdefault(part, {})["nvidia.com/gpu"] = gpus
    return out


def placement(settings: KubernetesSettings, gpus: int) -> dict[str, Any]:
    """nodeSelector and tolerations: GPU nodes only for servers that need GPUs."""
    out: dict[str, Any] = {}
    selector = {**settings.node_selector, **(settings.gpu_node_selector if gpus > 0 else {})}
    if selector:
        out["nodeSelector"] = selector
    if gpus > 0 and settings.gpu_tolerations:
        out["tolerations"] = copy.deepcopy(list(settings.gpu_tolerations))
    return out


def hf_marker(model: Mapping[str, Any], settings: KubernetesSettings, kind: str = "") -> str:
    """The file download_model.py writes once the pinned revision is complete in the cache
    (`kind` "adapters" for a LoRA adapter, which lives in its own directory, not the hub cache)."""
    return (f"{settings.model_cache_mount}/.llmops/complete/{kind + '/' if kind else ''}"
            f"{model['source_ref'].replace('/', '--')}@{str(model['revision']).replace('/', '--')}")


def hf_adapters(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in model.get("adapters") or [] if a["source_scheme"] == "hf"]


def uses_model_cache(model: Mapping[str, Any]) -> bool:
    """The pod mounts the model cache (and downloads into it): an hf: model or hf: adapter."""
    return model["source_scheme"] == "hf" or bool(hf_adapters(model))


def uses_path_volume(model: Mapping[str, Any]) -> bool:
    """The pod mounts the path volume claim: a path: model or path: adapter."""
    return model["source_scheme"] == "path" or any(a["source_scheme"] == "path" for a in model.get("adapters") or [])


def download_container(model: Mapping[str, Any], settings: KubernetesSettings, image: str) -> dict[str, Any]:
    """Fills the shared model cache with the pinned revision of an hf: model and of every hf:
    adapter once per cluster (a no-op after)."""
    env = []
    if model["source_scheme"] == "hf":
        env += [{"name": "LLM_MODEL_REPO", "value": model["source_ref"]},
                {"name": "LLM_MODEL_REVISION", "value": model["revision"]},
                {"name": "LLM_MODEL_MARKER", "value": hf_marker(model, settings)},
                {"name": "LLM_MODEL_IGNORE", "value": "original/*,*.pth"}]
    adapters = [{"name": a["name"], "repo": a["source_ref"], "revision": a["revision"] or "main",
                 "dir": adapter_k8s_dir(a, settings.model_cache_mount),
                 "marker": hf_marker(a, settings, "adapters")} for a in hf_adapters(model)]
    if adapters:
        env.append({"name": "LLM_ADAPTERS", "value": json.dumps(adapters, sort_keys=True)})
    return {
        "name": "model-download",
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [PYTHON, "/opt/llmops/download_model.py"],
        "env": env + [
            {"name": "HF_HUB_CACHE", "value": f"{settings.model_cache_mount}/hub"},
            {"name": "HOME", "value": CACHE_ENV["HOME"]},
            {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
            *([{"name": "HF_ENDPOINT", "value": settings.hf_endpoint}] if settings.hf_endpoint else []),
            # Public models need no token, so the Secret is optional.
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": settings.hf_token_secret, "key": "token",
                                                                "optional": True}}},
        ],
        "resources": copy.deepcopy(DOWNLOAD_RESOURCES),
        "securityContext": container_security(settings),
        # The only container that writes the shared model cache.
        "volumeMounts": [{"name": "model-cache", "mountPath": settings.model_cache_mount},
                         {"name": "download-script", "mountPath": "/opt/llmops", "readOnly": True},
                         {"name": "cache", "mountPath": CACHE_MOUNT}, dict(security.TMP_MOUNT)],
    }


def volumes(model: Mapping[str, Any], settings: KubernetesSettings,
            kv: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, the server's mounts): shared memory, writable caches, then the weights."""
    pod = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
           {"name": "cache", "emptyDir": {}}, dict(security.TMP_VOLUME)]
    mounts = [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "cache", "mountPath": CACHE_MOUNT},
              dict(security.TMP_MOUNT)]
    if uses_model_cache(model):
        # Read-only for the server: only the download init container writes the cache.
        mounts.append({"name": "model-cache", "mountPath": settings.model_cache_mount, "readOnly": True})
        pod += [{"name": "model-cache", "persistentVolumeClaim": {"claimName": settings.model_cache_claim}},
                {"name": "download-script", "configMap": {"name": DOWNLOAD_CONFIGMAP, "defaultMode": 0o444}}]
    if uses_path_volume(model):
        mounts.append({"name": "models", "mountPath": settings.path_volume_mount, "readOnly": True})
        pod.append({"name": "models", "persistentVolumeClaim": {"claimName": settings.path_volume_claim,
                                                                "readOnly": True}})
    if kv.get("enabled") and kv["install"] == "pip":
        mounts.append({"name": "kvcached", "mountPath": kv["user_base"], "readOnly": True})
        pod.append({"name": "kvcached", "emptyDir": {"sizeLimit": "1Gi"}})
    return pod, mounts


def annotations(model: Mapping[str, Any], kv: Mapping[str, Any]) -> dict[str, str]:
    hf = model["source_scheme"] == "hf"
    source = model["source"] + (f"@{model['revision']}" if hf and "@" not in model["source"] else "")
    out = {"llmops.platform/model-source": source}
    if model.get("adapters"):
        out["llmops.platform/adapters"] = ",".join(f"{a['name']}={a['source']}" for a in model["adapters"])
    if kv.get("enabled"):
        out["llmops.platform/kvcached"] = kv["version"]
    return out


def k8s_server(model: Mapping[str, Any], target: Mapping[str, Any] | Target,
               vllm_args: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The server of `model` on Kubernetes and the pod around it.

    Returns argv (container command + args), env, gpus, port, image, resources, probes,
    security contexts, volumes and mounts, init containers, and `container` and `pod`
    ({metadata: {annotations}, spec}) ready to lay out in a Deployment's template.
    `vllm_args` replaces the entry's own (a tuner trial).
    """
    target = target_from(target)
    if target.kind != "kubernetes":
        raise ServerError("vllm_server_target.kind", "a Kubernetes pod needs kind kubernetes (platform_target)")
    settings = KubernetesSettings.from_facts(target.kubernetes)
    model = {**model, "vllm_args": dict(model.get("vllm_args", {}) if vllm_args is None else vllm_args)}
    kv = target.kvcached_for(model["name"])
    image = kv["image"] if kv.get("enabled") else settings.image
    gpus = gpu_count(model, target.device)
    args = server_args(model, target, settings.port, model["vllm_args"])
    cache_env = dict(CACHE_ENV)
    if model["source_scheme"] == "hf":
        cache_env["HF_HUB_CACHE"] = f"{settings.model_cache_mount}/hub"
    env = server_env(model, target, cache_env)
    pod_volumes, mounts = volumes(model, settings, kv)
    init = []
    if kv.get("enabled") and kv["install"] == "pip":
        # First, so a failed build stops the pod before the (long) weights download.
        install = kvcached.install_container(kv, image, settings.image_pull_policy, container_security(settings),
                                             CACHE_MOUNT, CACHE_ENV["HOME"])
        install["volumeMounts"].append(dict(security.TMP_MOUNT))  # pip's build directory
        init.append(install)
    if uses_model_cache(model):
        init.append(download_container(model, settings, image))
    server_probes = probes(settings)
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [PYTHON] + ENTRYPOINT,
        "args": args,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "ports": [{"name": "http", "containerPort": settings.port, "protocol": "TCP"}],
        **copy.deepcopy(server_probes),
        # Endpoint removal reaches every kube-proxy and the router before SIGTERM. (An exec
        # sleep: the sleep action is alpha and off in Kubernetes 1.29.)
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(settings.prestop_sleep_s)]}}},
        "resources": resources(settings, gpus),
        "securityContext": container_security(settings),
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        # No {SERVICE}_PORT variables: vLLM reads VLLM_* and a Service named vllm-* would collide.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.termination_grace_s,
        "securityContext": security.pod_security_context(settings.run_as_user),
    }
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    spec.update(placement(settings, gpus))
    if init:
        spec["initContainers"] = init
    spec["containers"] = [container]
    spec["volumes"] = pod_volumes
    return {
        "name": model["name"],
        "argv": container["command"] + args,
        "env": env,
        "gpus": gpus,
        "port": settings.port,
        "image": image,
        "resources": container["resources"],
        "probes": server_probes,
        "security_context": container["securityContext"],
        "pod_security_context": spec["securityContext"],
        "volumes": pod_volumes,
        "volume_mounts": mounts,
        "init_containers": init,
        "annotations": annotations(model, kv),
        "container": container,
        "pod": {"metadata": {"annotations": annotations(model, kv)}, "spec": spec},
    }
