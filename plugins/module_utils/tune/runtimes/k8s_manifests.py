"""Per-trial Deployment + Service for the kubernetes runtime.

The trial's pod template is the vllm role's (vllm_k8s_pod.k8s_server, the same target
facts): image, volumes, probes, resources, GPUs and security context are those of the
deployed model; only the names, labels and the tuned flags differ (tests/render holds that).
The labels carry no llmops.platform/model, so the model's own Services never select a trial.
Pure functions: tests validate exactly these objects, the runtime writes them to disk and
applies the same dicts.
"""
from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.llmops.platform.plugins.module_utils.vllm_k8s_pod import k8s_server


def labels(task: str, trial_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/component": "tune-trial",
        "app.kubernetes.io/managed-by": "llmops-tune",
        "llmops.platform/tuner": task,
        "llmops.platform/trial": trial_id,
    }


def trial_name(task: str, trial_id: str) -> str:
    return f"tune-{task}-{trial_id}"[:63].rstrip("-")


def trial_manifests(task: str, trial_id: str, namespace: str, model: Mapping[str, Any],
                    target: Mapping[str, Any], vllm_args: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Deployment + Service of one trial: `model` (a normalised llm_models entry) served on
    `target` (the vllm role's vllm_server_target) with `vllm_args` instead of its own."""
    server = k8s_server(model, target, vllm_args)
    name = trial_name(task, trial_id)
    meta = {"name": name, "namespace": namespace, "labels": labels(task, trial_id)}
    selector = {"llmops.platform/tuner": task, "llmops.platform/trial": trial_id}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            # One trial pod at a time: its GPUs are not free for a surge pod.
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": labels(task, trial_id), **server["pod"]["metadata"]},
                         "spec": server["pod"]["spec"]},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(meta, labels=labels(task, trial_id)),
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": server["port"], "targetPort": "http", "protocol": "TCP"}]},
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
