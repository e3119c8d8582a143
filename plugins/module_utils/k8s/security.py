"""The security context of every container and pod the platform renders, in one place.

Python builders (vllm_k8s_pod.py: vLLM, its init containers, the tuner's trials, the
fine-tuned model's vLLM) call these functions; templates call them through the
`llmops.platform.k8s_security_context` filter (router, gateway, LLaMA-Factory, the device
plugin's smoke test). tests/render/test_security_context.py holds every rendered container to
them and lists the exceptions (the device plugin, dcgm-exporter) with the reason.

- no privilege escalation, every capability dropped, the runtime's default seccomp profile;
- not root: runAsNonRoot with a numeric uid (null keeps the image's user, then nothing is
  asserted about it: an operator's explicit choice);
- a read-only root filesystem, the writable paths (/tmp, caches) being emptyDirs the pod
  mounts; images that write under their own install tree opt out (`read_only_root=False`);
- no service account token in pods that never call the Kubernetes API (the pod spec's
  `automountServiceAccountToken: false`, set by each pod builder);
- the namespaces holding them enforce Pod Security Admission `restricted`
  (`pod_security_labels`), which these contexts satisfy.

The exceptions are listed in EXCEPTIONS with their reason and the policy scanner's checks
(checkov IDs) they fail; each excused object carries that reason as a
`checkov.io/skipN: CHECK=reason` annotation (`scan_annotations`, the
`llmops.platform.k8s_scan_annotations` filter), so the scan of every rendered object
(tests/render/test_policy_scan.py) passes with each suppression explained in the object itself.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

SECCOMP = {"type": "RuntimeDefault"}
# The emptyDir every read-only-root container mounts for scratch files.
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - an emptyDir, private to the pod


def container_security_context(read_only_root: bool = True, non_root: bool = True) -> dict[str, Any]:
    """For every container (init containers included)."""
    context: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                               "readOnlyRootFilesystem": bool(read_only_root), "seccompProfile": dict(SECCOMP)}
    if non_root:
        context["runAsNonRoot"] = True
    return context


def pod_security_context(run_as_user: Optional[int], fs_group: bool = True) -> dict[str, Any]:
    """For every pod: non-root as `run_as_user` (None keeps the image's user), seccomp always;
    `fs_group` makes mounted volumes writable for that uid."""
    context: dict[str, Any] = {}
    if run_as_user is not None:
        uid = int(run_as_user)
        context = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}
        if fs_group:
            context.update({"fsGroup": uid, "fsGroupChangePolicy": "OnRootMismatch"})
    context["seccompProfile"] = dict(SECCOMP)
    return context


def security_context(kind: str, run_as_user: Optional[int] = None, read_only_root: bool = True,
                     fs_group: bool = True, non_root: bool = True) -> dict[str, Any]:
    """`container` or `pod` (the filter's one entry point)."""
    if kind == "container":
        return container_security_context(read_only_root, non_root)
    if kind == "pod":
        return pod_security_context(run_as_user, fs_group)
    raise ValueError(f"security context kind {kind!r} is not container or pod")


# name -> (why it is excused, the scanner's checks that fail because of it). The same reason
# is in the template's comment and in tests/render/test_security_context.py.
EXCEPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dcgm-exporter": ("DCGM's profiling counters need root and SYS_ADMIN",
                      ("CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_25", "CKV_K8S_29", "CKV_K8S_31", "CKV_K8S_39",
                       "CKV_K8S_40")),
    "nvidia-device-plugin": ("its socket goes into the kubelet's root-owned device-plugins dir",
                             ("CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_29", "CKV_K8S_31", "CKV_K8S_40")),
    "llama-factory": ("LLaMA-Factory writes under its working directory", ("CKV_K8S_22",)),
    "endpoint-picker": ("the endpoint picker watches pods and InferencePools through the API", ("CKV_K8S_38",)),
}


def scan_annotations(exception: Optional[str] = None, skips: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """checkov.io/skipN annotations: the checks `exception` (a key of EXCEPTIONS) fails, with its
    reason, and `skips` (check ID -> reason) for what is not about the security context."""
    reasons: dict[str, str] = {}
    if exception:
        if exception not in EXCEPTIONS:
            raise ValueError(f"no security-context exception {exception!r} (one of {', '.join(sorted(EXCEPTIONS))})")
        reason, checks = EXCEPTIONS[exception]
        reasons.update(dict.fromkeys(checks, f"security-context exception: {reason}"))
    for check, reason in (skips or {}).items():
        if not str(reason).strip():
            raise ValueError(f"scan skip {check} has no reason")
        reasons[str(check)] = str(reason).strip()
    ordered = sorted(reasons.items(), key=lambda item: (len(item[0]), item[0]))
    return {f"checkov.io/skip{index}": f"{check}={reason}" for index, (check, reason) in enumerate(ordered, 1)}


# Pod Security Admission (https://kubernetes.io/docs/concepts/security/pod-security-admission/):
# every namespace the platform creates carries one level, enforced and also audited and warned
# (so a violation is named in `kubectl apply`'s output and in the audit log, not only refused).
POD_SECURITY_LEVELS = ("restricted", "baseline", "privileged")
POD_SECURITY_MODES = ("enforce", "audit", "warn")


def pod_security_labels(level: str, version: str = "latest") -> dict[str, str]:
    """Namespace labels enforcing `level` (restricted, baseline or privileged)."""
    if level not in POD_SECURITY_LEVELS:
        raise ValueError(f"pod security level {level!r} is not one of {', '.join(POD_SECURITY_LEVELS)}")
    labels = {}
    for mode in POD_SECURITY_MODES:
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = version
    return labels
