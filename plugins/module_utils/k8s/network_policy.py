"""Every NetworkPolicy the platform renders, built in one place.

Roles render the result of `policies(workload, settings)` next to the workload it guards
(the vllm role its namespace's default deny and vLLM's ingress, the router and gateway
roles theirs, the llama_factory role the training namespace's), so each file still holds
exactly what its role applies and prunes. Peers are chosen by labels nobody but the
platform sets on the other side:

- namespaces by `kubernetes.io/metadata.name` (set by the API server, immutable);
- pods by the labels the platform's own templates set (`app.kubernetes.io/component`,
  `app.kubernetes.io/name`), always together with the namespace they must live in, so a pod
  in another namespace wearing the same labels is not admitted. Inside a platform
  namespace, whoever may create pods is trusted: RBAC on that namespace is the boundary.

Pure Python, no Ansible imports; tests/render evaluates the rendered policies (who can
reach what) and tests/unit covers the builder.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping

API_VERSION = "networking.k8s.io/v1"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# kube-prometheus-stack's Prometheus pods (prometheus-operator sets this label).
PROMETHEUS_LABELS = {NAME_LABEL: "prometheus"}
# Every container port the platform renders is named http.
HTTP = {"port": "http", "protocol": "TCP"}

WORKLOADS = ("namespace", "vllm", "router", "gateway", "webui", "inference", "inference_pool")
# The endpoint picker's ext-proc port (gRPC, Gateway API Inference Extension).
EPP_GRPC = {"port": "grpc", "protocol": "TCP"}


class NetworkPolicyError(ValueError):
    """A setting the builder cannot turn into a policy (names the setting and the fix)."""


def namespace_peer(namespaces: Iterable[str]) -> dict[str, Any]:
    names = sorted(set(namespaces))
    if len(names) == 1:
        return {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: names[0]}}}
    return {"namespaceSelector": {"matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "In",
                                                        "values": names}]}}


def pod_peer(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Pods with `labels` in `namespace` (and nowhere else)."""
    return {**namespace_peer([namespace]), "podSelector": {"matchLabels": dict(labels)}}


def cidr_peer(cidr: str) -> dict[str, Any]:
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        raise NetworkPolicyError(f"{cidr!r} is not a CIDR (e.g. 10.0.0.0/8, 192.0.2.7/32)") from None
    return {"ipBlock": {"cidr": str(network)}}


def client_peers(clients: Mapping[str, Any] | None, where: str) -> list[dict[str, Any]]:
    """Peers of a `{namespaces: [...], cidrs: [...]}` setting (every pod of those namespaces,
    and sources in those CIDRs)."""
    clients = dict(clients or {})
    unknown = sorted(set(clients) - {"namespaces", "cidrs"})
    if unknown:
        raise NetworkPolicyError(f"{where}.{unknown[0]} is unknown; the keys are namespaces and cidrs")
    peers = []
    namespaces = [str(n) for n in clients.get("namespaces") or []]
    if namespaces:
        peers.append(namespace_peer(namespaces))
    for cidr in clients.get("cidrs") or []:
        try:
            peers.append(cidr_peer(cidr))
        except NetworkPolicyError as exc:
            raise NetworkPolicyError(f"{where}.cidrs: {exc}") from None
    return peers


def _policy(name: str, namespace: str, labels: Mapping[str, str], pod_selector: Mapping[str, str],
            rules: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_selector)} if pod_selector else {},
                            "policyTypes": ["Ingress"]}
    rules = [r for r in rules if r["from"]]
    if rules:
        spec["ingress"] = rules
    return {"apiVersion": API_VERSION, "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec}


def _rule(peers: list[dict[str, Any]], port: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"from": peers, "ports": [dict(port or HTTP)]}


def policies(workload: str, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The NetworkPolicies guarding `workload` (one of WORKLOADS).

    settings: namespace (where the policies live), serving_namespace (the routers' and the
    gateway's), monitoring_namespace (Prometheus), labels (on the policy objects), name (the
    router's or gateway's app.kubernetes.io/name), gateway_clients and admin_clients
    ({namespaces, cidrs}); for inference_pool also model (the pool's model name) and
    data_plane_namespace (where the Gateway's proxy pods run).
    """
    if workload not in WORKLOADS:
        raise NetworkPolicyError(f"workload {workload!r} is not one of {', '.join(WORKLOADS)}")
    namespace = str(settings["namespace"])
    labels = dict(settings.get("labels") or {})
    serving = str(settings.get("serving_namespace") or namespace)
    prometheus = pod_peer(str(settings["monitoring_namespace"]), PROMETHEUS_LABELS) \
        if settings.get("monitoring_namespace") else None
    scrape = [_rule([prometheus])] if prometheus else []
    # Routers: the serving layer's and every compare arm's (all render component: router).
    routers = pod_peer(serving, {COMPONENT_LABEL: "router"})
    gateways = pod_peer(serving, {COMPONENT_LABEL: "gateway"})

    if workload == "namespace":
        # Nothing gets in unless a policy below says so (kubectl port-forward still works:
        # it enters the pod's network namespace from the kubelet, not through the pod network).
        return [_policy("default-deny-ingress", namespace, labels, {}, [])]
    if workload == "vllm":
        # vLLM has no authentication: only routers (proxying) and Prometheus (/metrics).
        return [_policy("vllm-ingress", namespace, {**labels, NAME_LABEL: "vllm"}, {NAME_LABEL: "vllm"},
                        [_rule([routers])] + scrape)]
    if workload == "inference":
        # The fine-tuned model's vLLM: like any vLLM, routers and Prometheus only.
        selector = {NAME_LABEL: "llama-factory", COMPONENT_LABEL: "inference"}
        return [_policy("llm-inference-ingress", namespace, labels, selector, [_rule([routers])] + scrape)]
    if workload == "router":
        name = str(settings["name"])
        return [_policy(f"{name}-ingress", namespace, {**labels, NAME_LABEL: name}, {NAME_LABEL: name},
                        [_rule([gateways])] + scrape)]
    if workload == "gateway":
        name = str(settings["name"])
        clients = client_peers(settings.get("gateway_clients"), "platform_k8s_gateway_clients")
        return [_policy(f"{name}-ingress", namespace, {**labels, NAME_LABEL: name}, {NAME_LABEL: name},
                        [_rule(clients)] + scrape)]
    if workload == "inference_pool":
        # Gateway API Inference Extension, one pool per model: the Gateway's proxies (every pod
        # of their namespace) send requests straight to the model's vLLM pods and ask the
        # endpoint picker (EPP, ext-proc over gRPC) which pod to use. The EPP itself scrapes
        # vLLM's /metrics: it wears component router, so vllm-ingress admits it already.
        name = str(settings["name"])
        data_plane = str(settings.get("data_plane_namespace") or "")
        if not data_plane:
            raise NetworkPolicyError("llm_router.gateway_data_plane_namespace (or gateway_namespace) is empty")
        proxies = namespace_peer([data_plane])
        model = {NAME_LABEL: "vllm", "llmops.platform/model": str(settings["model"])}
        return [_policy(f"{name}-vllm-ingress", namespace, {**labels, NAME_LABEL: name}, model, [_rule([proxies])]),
                _policy(f"{name}-ingress", namespace, {**labels, NAME_LABEL: name}, {NAME_LABEL: name},
                        [_rule([proxies], EPP_GRPC)])]
    # webui: LLaMA-Factory's WebUI runs training jobs and reads the volume: admins only.
    clients = client_peers(settings.get("admin_clients"), "platform_k8s_admin_clients")
    selector = {NAME_LABEL: "llama-factory", COMPONENT_LABEL: "webui"}
    return [_policy("llama-factory-webui-ingress", namespace, labels, selector, [_rule(clients)])]
