"""Per-trial Deployment + Service for the kubernetes runtime.

The vllm role's own Kubernetes templates do not exist yet (issue 8); this is the tuner's
own minimal pair until they do. Pure functions: tests validate exactly these objects with
tests/render/k8s_validate.py, the runtime writes them to disk and applies the same dicts.
"""
from __future__ import annotations

from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.vllm_command import server_args

PORT = 8000
MODEL_MOUNT = "/model"


def labels(task: str, trial_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/component": "tune-trial",
        "app.kubernetes.io/managed-by": "llmops-tune",
        "llmops.platform/tuner": task,
        "llmops.platform/trial": trial_id,
    }


def trial_manifests(task: str, trial_id: str, namespace: str, image: str, served_name: str,
                    vllm_args: dict[str, Any], model_pvc: str, model_subpath: str = "",
                    gpus: int = 0, cpu: str = "2", memory: str = "8Gi",
                    python: str = "python3", startup_timeout_s: int = 900) -> list[dict[str, Any]]:
    name = f"tune-{task}-{trial_id}"[:63].rstrip("-")
    meta = {"name": name, "namespace": namespace, "labels": labels(task, trial_id)}
    selector = {"llmops.platform/tuner": task, "llmops.platform/trial": trial_id}
    args = server_args(MODEL_MOUNT, served_name, "0.0.0.0", PORT, vllm_args)  # noqa: S104 (pod IP)
    limits: dict[str, str] = {"cpu": cpu, "memory": memory}
    env = [{"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "HF_HUB_OFFLINE", "value": "1"}]
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    else:
        env.append({"name": "VLLM_CPU_KVCACHE_SPACE", "value": "1"})
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 3}
    container = {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [python, *args[:2]],
        "args": args[2:],
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        # Slow model loads must not be killed by liveness; startupProbe covers the load.
        "startupProbe": {**probe, "failureThreshold": max(1, startup_timeout_s // 5)},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": [{"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True,
                          **({"subPath": model_subpath} if model_subpath else {})},
                         {"name": "shm", "mountPath": "/dev/shm"}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 15,
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [{"name": "model", "persistentVolumeClaim": {"claimName": model_pvc, "readOnly": True}},
                    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
    }
    if gpus:
        pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": labels(task, trial_id)}, "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }
    return [deployment, service]


def pod_failure(pod_status: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, reason) when a trial pod has failed in a way waiting will not fix, else None."""
    for cs in pod_status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        if terminated.get("reason") == "OOMKilled" or last.get("reason") == "OOMKilled":
            return "oom", "container OOMKilled"
        if waiting.get("reason") in ("CrashLoopBackOff", "CreateContainerConfigError", "ErrImagePull",
                                     "ImagePullBackOff", "InvalidImageName"):
            return ("startup_crash" if waiting["reason"] == "CrashLoopBackOff" else "runtime_error",
                    f"{waiting['reason']}: {waiting.get('message', '')}".strip(": "))
        if terminated and terminated.get("exitCode", 0) != 0:
            return "startup_crash", f"exited with code {terminated.get('exitCode')} ({terminated.get('reason', '')})"
        if cs.get("restartCount", 0) > 0 and last:
            return "startup_crash", f"restarted after exit code {last.get('exitCode')} ({last.get('reason', '')})"
    for cond in pod_status.get("conditions") or []:
        if (cond.get("type"), cond.get("status"), cond.get("reason")) == ("PodScheduled", "False", "Unschedulable"):
            return "runtime_error", f"unschedulable: {cond.get('message', '')}"
    return None
