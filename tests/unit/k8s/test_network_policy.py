"""The NetworkPolicy builder (plugins/module_utils/k8s/network_policy.py): peers by
platform-set labels and namespace names, errors that name the setting."""
from __future__ import annotations

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.k8s import network_policy as np

SETTINGS = {"namespace": "llm-platform", "serving_namespace": "llm-platform", "monitoring_namespace": "monitoring",
            "labels": {"app.kubernetes.io/part-of": "llmops-platform"}, "name": "llm-router",
            "gateway_clients": {"namespaces": ["ingress-nginx", "kube-system"], "cidrs": ["10.0.0.0/8"]},
            "admin_clients": {"namespaces": [], "cidrs": ["192.0.2.7"]},
            "model": "llama-8b", "data_plane_namespace": "envoy-gateway-system"}


def _peers(policy):
    return [peer for rule in policy["spec"].get("ingress", []) for peer in rule["from"]]


def test_default_deny_selects_every_pod_and_admits_nothing():
    (policy,) = np.policies("namespace", SETTINGS)
    assert policy["metadata"]["name"] == "default-deny-ingress"
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_vllm_admits_routers_of_the_serving_namespace_and_prometheus_on_http():
    (policy,) = np.policies("vllm", SETTINGS)
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "vllm"}}
    assert _peers(policy) == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm-platform"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/component": "router"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
    assert all(rule["ports"] == [{"port": "http", "protocol": "TCP"}] for rule in policy["spec"]["ingress"])
    assert policy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "llmops-platform"


def test_every_pod_peer_names_its_namespace():
    for workload in np.WORKLOADS:
        for policy in np.policies(workload, SETTINGS):
            for peer in _peers(policy):
                assert "ipBlock" in peer or "kubernetes.io/metadata.name" in str(peer["namespaceSelector"]), workload


def test_gateway_clients_become_namespace_and_cidr_peers():
    (policy,) = np.policies("gateway", {**SETTINGS, "name": "llm-gateway"})
    assert policy["metadata"]["name"] == "llm-gateway-ingress"
    clients = policy["spec"]["ingress"][0]["from"]
    assert clients == [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ingress-nginx", "kube-system"]}]}},
        {"ipBlock": {"cidr": "10.0.0.0/8"}}]


def test_no_admin_clients_no_rule_and_a_host_address_is_a_32():
    (policy,) = np.policies("webui", SETTINGS)
    assert _peers(policy) == [{"ipBlock": {"cidr": "192.0.2.7/32"}}]
    (closed,) = np.policies("webui", {**SETTINGS, "admin_clients": {"namespaces": [], "cidrs": []}})
    assert "ingress" not in closed["spec"] and closed["spec"]["policyTypes"] == ["Ingress"]


def test_the_router_policy_has_no_prometheus_rule_without_a_monitoring_namespace():
    (policy,) = np.policies("router", {**SETTINGS, "monitoring_namespace": ""})
    assert len(policy["spec"]["ingress"]) == 1


def test_an_inference_pool_admits_the_gateway_proxies_to_its_vllm_pods_and_epp_only():
    vllm, epp = np.policies("inference_pool", {**SETTINGS, "name": "llama-8b-epp"})
    proxies = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}]
    assert vllm["metadata"]["name"] == "llama-8b-epp-vllm-ingress"
    assert vllm["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "vllm",
                                                           "llmops.platform/model": "llama-8b"}}
    assert vllm["spec"]["ingress"] == [{"from": proxies, "ports": [{"port": "http", "protocol": "TCP"}]}]
    assert epp["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "llama-8b-epp"}}
    assert epp["spec"]["ingress"] == [{"from": proxies, "ports": [{"port": "grpc", "protocol": "TCP"}]}]


@pytest.mark.parametrize("workload,settings,message", [
    ("inference_pool", {"data_plane_namespace": ""}, "llm_router.gateway_data_plane_namespace"),
    ("gateway", {"gateway_clients": {"cidrs": ["10.0.0.300/8"]}}, "platform_k8s_gateway_clients.cidrs"),
    ("webui", {"admin_clients": {"namespace": ["x"]}}, "platform_k8s_admin_clients.namespace is unknown"),
    ("database", {}, "workload 'database'"),
])
def test_bad_settings_name_the_setting(workload, settings, message):
    with pytest.raises(np.NetworkPolicyError, match=message.replace(".", r"\.")):
        np.policies(workload, {**SETTINGS, **settings})
