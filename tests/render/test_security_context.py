"""Every container the platform renders carries the platform's security context
(plugins/module_utils/k8s/security.py): not root, RuntimeDefault seccomp, every capability
dropped, no privilege escalation, a read-only root filesystem with emptyDirs for the paths it
writes, and no service account token in pods that never call the Kubernetes API.

Renders: the serving and monitoring layers of every serving variant (seed 002, KVCached,
seed 000), the fine-tuning layer and the cluster layer (device plugin and its smoke test),
the same renders the other tests use. The exceptions are listed with their reason.
"""
from __future__ import annotations

import os

import cluster_render
import finetune_render
import pytest
import serving_render
from k8s_validate import load_documents

from ansible_collections.llmops.platform.plugins.module_utils.k8s import security

POD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "Pod")
VLLM_CONTAINERS = ("vllm", "model-download", "kvcached-install")
# (kind, name) -> the checks it is excused from, and why: the reasons are security.EXCEPTIONS',
# the same the rendered objects carry for the policy scanner (test_policy_scan.py).
REASON = {name: reason for name, (reason, _) in security.EXCEPTIONS.items()}
EXCEPTIONS = {
    ("DaemonSet", "dcgm-exporter"): ({"non_root", "seccomp", "read_only_root", "token", "capabilities"},
                                     REASON["dcgm-exporter"]),
    ("DaemonSet", "nvidia-device-plugin"): ({"non_root", "seccomp", "read_only_root"}, REASON["nvidia-device-plugin"]),
    ("Job", "llama-factory-train"): ({"read_only_root"}, REASON["llama-factory"]),
    ("Job", "llama-factory-merge"): ({"read_only_root"}, REASON["llama-factory"]),
    ("Deployment", "llama-factory-webui"): ({"read_only_root"}, REASON["llama-factory"]),
    # Gateway API Inference Extension: one endpoint picker per model.
    ("Deployment", "<model>-epp"): ({"token"}, REASON["endpoint-picker"]),
}


def _pod(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "Job":
        return obj["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _key(obj: dict) -> tuple[str, str]:
    name = obj["metadata"]["name"]
    if obj["kind"] == "Job":
        name = name.rsplit("-", 1)[0]  # the input hash
    if obj["kind"] == "Deployment" and name.endswith("-epp"):
        name = "<model>-epp"
    return obj["kind"], name


def problems(obj: dict) -> list[str]:
    excused = EXCEPTIONS.get(_key(obj), (set(), ""))[0]
    spec = _pod(obj)
    pod_ctx = spec.get("securityContext") or {}
    out = []
    if "token" not in excused and spec.get("automountServiceAccountToken") is not False:
        out.append("automountServiceAccountToken is not false")
    mounts_of_pod = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    for container in spec.get("initContainers", []) + spec["containers"]:
        ctx = container.get("securityContext") or {}
        where = container["name"]
        checks = {
            "escalation": ctx.get("allowPrivilegeEscalation") is False,
            "privileged": not ctx.get("privileged"),
            "capabilities": (ctx.get("capabilities") or {}).get("drop") == ["ALL"]
            and not (ctx.get("capabilities") or {}).get("add"),
            "non_root": bool(ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot"))
            and ctx.get("runAsUser", pod_ctx.get("runAsUser", 1)) != 0,
            "seccomp": (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
            "read_only_root": ctx.get("readOnlyRootFilesystem") is True,
        }
        out += [f"{where}: {name}" for name, ok in checks.items() if not ok and name not in excused]
        if ctx.get("readOnlyRootFilesystem") and where in VLLM_CONTAINERS:
            # Read-only root: vLLM's (torch's, pip's) /tmp must be the pod's own emptyDir.
            if not any(m["mountPath"] == "/tmp" and m["name"] in mounts_of_pod  # noqa: S108
                       for m in container.get("volumeMounts", [])):
                out.append(f"{where}: read-only root without an emptyDir on /tmp")
    return [f"{obj['kind']}/{obj['metadata']['name']}: {p}" for p in out]


@pytest.fixture(scope="module")
def workloads() -> list[dict]:
    dirs = [os.path.join(home, d) for home in serving_render.render_all().values()
            for d in os.listdir(home) if d.startswith("rendered-")]
    dirs += [finetune_render.default(), cluster_render.render_all()["kubeadm"]]
    return [d for _, d in load_documents(dirs) if d.get("kind") in POD_KINDS]


def test_every_container_has_the_platform_security_context(workloads):
    kinds = {_key(w) for w in workloads}
    # The renders cover every kind of workload the platform ships.
    for expected in [("Deployment", "llm-router"), ("Deployment", "llm-gateway"), ("Deployment", "llama-8b"),
                     ("Deployment", "llm-inference"), ("Deployment", "llama-factory-webui"),
                     ("Job", "llama-factory-train"), ("DaemonSet", "dcgm-exporter"),
                     ("DaemonSet", "nvidia-device-plugin"), ("Pod", "gpu-smoke-test")]:
        assert expected in kinds, expected
    assert sum((problems(w) for w in workloads), []) == []
    # Every exception is still needed (an excused workload that passes everything is stale).
    assert set(EXCEPTIONS) <= kinds


def test_the_check_catches_a_container_without_it(workloads):
    import copy
    router = copy.deepcopy(next(w for w in workloads if _key(w) == ("Deployment", "llm-router")))
    ctx = _pod(router)["containers"][0]["securityContext"]
    ctx["readOnlyRootFilesystem"] = False
    ctx["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    _pod(router)["automountServiceAccountToken"] = True
    assert len(problems(router)) == 3
