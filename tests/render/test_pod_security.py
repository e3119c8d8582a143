"""Pod Security Admission on every namespace the platform renders: each carries the
`pod-security.kubernetes.io/*` labels (enforce, audit, warn), and every pod the platform puts
in it passes that level of the Pod Security Standards
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), checked here by our own
implementation of the baseline and restricted rules. The monitoring namespace is privileged
(node-exporter and dcgm-exporter); the platform's workload namespaces are restricted.

Renders: every serving variant (serving + monitoring layers), the fine-tuning layer, and the
cluster layer (whose device plugin runs in kube-system, a namespace the platform does not create).
"""
from __future__ import annotations

import copy
import os

import cluster_render
import finetune_render
import pytest
import serving_render
from k8s_validate import load_documents

POD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "Pod")
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                         "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
EXPECTED = {"llm-platform": "restricted", "managed": "restricted", "monitoring": "privileged",
            "llm-training": "restricted"}


def _pod_spec(obj: dict) -> dict:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def baseline_violations(spec: dict) -> list[str]:
    errors = [f"{field}: true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    errors += [f"volume {v['name']}: hostPath" for v in spec.get("volumes", []) if "hostPath" in v]
    pod_ctx = spec.get("securityContext") or {}
    if (pod_ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
        errors.append("pod: seccomp Unconfined")
    errors += [f"sysctl {s['name']}: unsafe" for s in pod_ctx.get("sysctls", []) if s["name"] not in SAFE_SYSCTLS]
    for container in spec.get("initContainers", []) + spec["containers"]:
        ctx, name = container.get("securityContext") or {}, container["name"]
        if ctx.get("privileged"):
            errors.append(f"{name}: privileged")
        extra = set((ctx.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if extra:
            errors.append(f"{name}: adds {sorted(extra)}")
        if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
            errors.append(f"{name}: seccomp Unconfined")
        if ctx.get("procMount", "Default") != "Default":
            errors.append(f"{name}: procMount {ctx['procMount']}")
        errors += [f"{name}: hostPort {p['hostPort']}" for p in container.get("ports", []) if p.get("hostPort")]
    return errors


def restricted_violations(spec: dict) -> list[str]:
    errors = baseline_violations(spec)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            errors.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)} not allowed")
    pod_ctx = spec.get("securityContext") or {}
    for container in spec.get("initContainers", []) + spec["containers"]:
        ctx, name = container.get("securityContext") or {}, container["name"]
        if ctx.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{name}: allowPrivilegeEscalation is not false")
        if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
            errors.append(f"{name}: runAsNonRoot is not true")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            errors.append(f"{name}: runAsUser 0")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{name}: seccomp {seccomp}")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            errors.append(f"{name}: capabilities not dropped")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            errors.append(f"{name}: adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}")
    return errors


def violations(spec: dict, level: str) -> list[str]:
    return {"privileged": lambda s: [], "baseline": baseline_violations, "restricted": restricted_violations}[level](spec)


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    dirs = [os.path.join(home, d) for home in serving_render.render_all().values()
            for d in os.listdir(home) if d.startswith("rendered-")]
    dirs += [finetune_render.default(), cluster_render.render_all()["kubeadm"]]
    return [d for _, d in load_documents(dirs)]


def test_every_rendered_namespace_has_pod_security_labels(documents):
    namespaces = {}
    for doc in documents:
        if doc.get("kind") == "Namespace":
            namespaces.setdefault(doc["metadata"]["name"], []).append(doc["metadata"].get("labels") or {})
    assert set(namespaces) == set(EXPECTED)
    for name, label_sets in namespaces.items():
        for labels in label_sets:
            level = labels.get("pod-security.kubernetes.io/enforce")
            assert level == EXPECTED[name], (name, labels)
            for mode in ("audit", "warn"):
                assert labels[f"pod-security.kubernetes.io/{mode}"] == level, (name, mode)
            assert all(labels[f"pod-security.kubernetes.io/{m}-version"] == "latest" for m in ("enforce", "audit", "warn"))


def test_every_pod_passes_its_namespace_level(documents):
    levels = {d["metadata"]["name"]: d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for d in documents if d.get("kind") == "Namespace"}
    checked, problems = set(), []
    for doc in documents:
        if doc.get("kind") not in POD_KINDS:
            continue
        namespace = doc["metadata"].get("namespace")
        if namespace not in levels:
            # Only the device plugin and its smoke test: kube-system/default, not the platform's.
            assert doc["metadata"]["name"] in ("nvidia-device-plugin", "gpu-smoke-test"), doc["metadata"]
            continue
        checked.add((namespace, doc["kind"], doc["metadata"]["name"]))
        problems += [f"{namespace}/{doc['kind']}/{doc['metadata']['name']}: {e}"
                     for e in violations(_pod_spec(doc), levels[namespace])]
    assert problems == []
    # The restricted namespaces really hold the platform's workloads.
    restricted = {name for ns, _, name in checked if levels[ns] == "restricted"}
    assert {"llm-router", "llm-gateway", "llama-8b", "llm-inference", "llama-factory-webui"} <= restricted
    # dcgm-exporter is what makes the monitoring namespace privileged: it fails baseline.
    dcgm = next(d for d in documents if d.get("kind") == "DaemonSet" and d["metadata"]["name"] == "dcgm-exporter")
    assert baseline_violations(_pod_spec(dcgm))


def test_the_checks_catch_violations(documents):
    router = copy.deepcopy(next(d for d in documents if d.get("kind") == "Deployment" and d["metadata"]["name"] == "llm-router"))
    spec = _pod_spec(router)
    assert restricted_violations(spec) == []
    spec["hostNetwork"] = True
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["securityContext"].pop("runAsNonRoot", None)
    spec["containers"][0]["securityContext"].pop("runAsNonRoot", None)
    errors = restricted_violations(spec)
    assert "hostNetwork: true" in errors and "volume host: hostPath" in errors
    assert any("allowPrivilegeEscalation" in e for e in errors) and any("runAsNonRoot" in e for e in errors)
    assert baseline_violations(spec) == ["hostNetwork: true", "volume host: hostPath"]
