"""Filters for the Kubernetes target of the serving layer."""
from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.k8s import images, network_policy, security
from ansible_collections.llmops.platform.plugins.module_utils.router_config import RouterConfigError, model_routes


def k8s_service_url(name: str, namespace: str, port: int, cluster_domain: str = "cluster.local") -> str:
    """In-cluster URL of a Service: http://<name>.<namespace>.svc.<domain>:<port>."""
    return f"http://{name}.{namespace}.svc.{cluster_domain}:{int(port)}"


def router_k8s_models(models: list[dict[str, Any]], namespace: str, port: int = 8000,
                      cluster_domain: str = "cluster.local", per_model_policy: Any = None) -> list[dict[str, Any]]:
    """Router config entries for models served on Kubernetes.

    `replicas` holds the model's ClusterIP Service, which any router build can use (kube-proxy
    then spreads connections). `discovery` names the headless `<model>-replicas` Service:
    its DNS returns one address per *ready* pod, which is what a load-aware router needs
    to poll and pick individual replicas (pod IPs change, so they cannot be listed here).
    `policy` and `adapters` (LoRA adapter names routed to the model's pods) are the local
    target's (router_config.model_routes, from llm_router.per_model_policy).
    """
    try:
        routes = model_routes(models, per_model_policy)
    except RouterConfigError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None
    entries = []
    for model, route in zip(models, routes):
        name = model["name"]
        entry = {
            "name": name,
            "replicas": [{"name": name, "url": k8s_service_url(name, namespace, port, cluster_domain)}],
            "discovery": {"type": "dns", "host": f"{name}-replicas.{namespace}.svc.{cluster_domain}", "port": int(port),
                          "scheme": "http"},
            **{k: v for k, v in route.items() if k != "name"},
        }
        # One Deployment per model, so every discovered pod has the model's batch size.
        slots = (model.get("vllm_args") or {}).get("max_num_seqs")
        if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0:
            entry["max_num_seqs"] = slots
        entries.append(entry)
    return entries


def k8s_network_policies(workload: str, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The NetworkPolicies guarding one workload (module_utils/k8s/network_policy.py)."""
    try:
        return network_policy.policies(workload, settings)
    except network_policy.NetworkPolicyError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def k8s_security_context(kind: str, run_as_user: Any = None, read_only_root: bool = True, fs_group: bool = True,
                         non_root: bool = True) -> dict[str, Any]:
    """The platform's `container` or `pod` securityContext (module_utils/k8s/security.py)."""
    try:
        return security.security_context(kind, None if run_as_user in (None, "") else int(run_as_user),
                                         bool(read_only_root), bool(fs_group), bool(non_root))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def k8s_scan_annotations(skips: Any = None, exception: Any = None) -> dict[str, str]:
    """The policy scanner's suppressions for one object, each with its reason: the checks the
    security-context `exception` fails (module_utils/k8s/security.py) and `skips` (ID -> reason)."""
    try:
        return security.scan_annotations(exception or None, skips or {})
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def k8s_pod_security_labels(level: str, version: str = "latest") -> dict[str, str]:
    """Pod Security Admission labels of a namespace (module_utils/k8s/security.py)."""
    try:
        return security.pod_security_labels(level, version)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def platform_images(versions: dict[str, Any], registry: Any = "", digests: Any = None) -> dict[str, str]:
    """Every image of platform_versions as rendered: from `registry` (a mirror; empty keeps
    upstream), pinned to its digest in `digests` when it has one (module_utils/k8s/images.py)."""
    try:
        return images.platform_images(versions, registry or "", digests or {})
    except images.ImageError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


class FilterModule:
    def filters(self):
        return {"router_k8s_models": router_k8s_models, "k8s_service_url": k8s_service_url,
                "k8s_network_policies": k8s_network_policies, "k8s_security_context": k8s_security_context,
                "k8s_scan_annotations": k8s_scan_annotations, "platform_images": platform_images,
                "k8s_pod_security_labels": k8s_pod_security_labels}
