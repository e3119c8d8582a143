"""Who can reach what, computed from the NetworkPolicies the platform renders.

Seed 002's serving and monitoring render (tests/render/inventories/k8s_002: namespace managed,
gateway clients ingress-nginx + 203.0.113.0/24, admin clients platform-admin +
198.51.100.0/28) and the fine-tuning render in the same namespaces form one cluster; every
rendered pod plus the pods and addresses around it (Prometheus, an ingress controller, an
admin shell, impostors wearing platform labels) are the sources, and netpol_eval.py (the
NetworkPolicy semantics, independent of the builder) says which of them reach the router,
every vLLM, the gateway, the WebUI and the fine-tuned model's vLLM. The sets must be exactly
the intended ones. Also: no Secret value reaches any rendered file.
"""
from __future__ import annotations

import copy
import os

import finetune_render
import netpol_eval
import pytest
import serving_render
from k8s_validate import load_documents
from netpol_eval import Cluster, Pod

SERVING, TRAINING, MONITORING = "managed", "llm-training", "monitoring"
HTTP = (("http", 8000, "TCP"),)

PROMETHEUS = Pod("monitoring/prometheus", MONITORING, {"app.kubernetes.io/name": "prometheus"})
SOURCES = [
    PROMETHEUS,
    Pod("monitoring/grafana", MONITORING, {"app.kubernetes.io/name": "grafana"}),
    Pod("ingress-nginx/controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    Pod("platform-admin/shell", "platform-admin", {"run": "shell"}),
    # The old scheme's client label, set by anyone who may create a pod.
    Pod("managed/labelled-client", SERVING, {"llmops.platform/llm-client": "true", "app": "bench"}),
    # Platform labels worn outside the platform's namespaces.
    Pod("default/impostor-router", "default", {"app.kubernetes.io/name": "llm-router",
                                               "app.kubernetes.io/component": "router"}),
    Pod("default/impostor-gateway", "default", {"app.kubernetes.io/name": "llm-gateway",
                                                "app.kubernetes.io/component": "gateway"}),
    Pod("monitoring/impostor-router", MONITORING, {"app.kubernetes.io/component": "router"}),
    Pod("ip/gateway-client", None, ip="203.0.113.9"),
    Pod("ip/admin", None, ip="198.51.100.5"),
    Pod("ip/internet", None, ip="192.0.2.1"),
]
ROUTERS_AND_PROMETHEUS = {"managed/llm-router", "monitoring/prometheus"}
MODELS = ("llama-8b", "qwen-7b", "mistral-7b")


@pytest.fixture(scope="module")
def docs():
    serving = os.path.join(serving_render.render_all()["seed002"], "rendered-0")
    return [d for _, d in load_documents([serving, finetune_render.default()])]


@pytest.fixture(scope="module")
def cluster(docs):
    return Cluster(docs)


@pytest.fixture(scope="module")
def pods(docs):
    return {p.name: p for p in netpol_eval.pods(docs)}


def _reachers(cluster: Cluster, pods: dict, target: str) -> set[str]:
    return cluster.reachers(list(pods.values()) + SOURCES, pods[target])


def test_every_vllm_admits_only_the_routers_and_prometheus(cluster, pods):
    for model in MODELS:
        assert _reachers(cluster, pods, f"managed/{model}") == ROUTERS_AND_PROMETHEUS, model
    # The fine-tuned model's vLLM in the training namespace too.
    assert _reachers(cluster, pods, "llm-training/llm-inference") == ROUTERS_AND_PROMETHEUS


def test_the_router_admits_only_the_gateway_and_prometheus(cluster, pods):
    assert _reachers(cluster, pods, "managed/llm-router") == {"managed/llm-gateway", "monitoring/prometheus"}


def test_the_gateway_admits_only_its_clients_and_prometheus(cluster, pods):
    assert _reachers(cluster, pods, "managed/llm-gateway") == {
        "ingress-nginx/controller", "ip/gateway-client", "monitoring/prometheus"}


def test_the_webui_admits_only_admins(cluster, pods):
    assert _reachers(cluster, pods, "llm-training/llama-factory-webui") == {"platform-admin/shell", "ip/admin"}


def test_mlflow_is_not_rendered_on_kubernetes(pods):
    # MLflow on Kubernetes is the operator's (llama_factory_k8s_mlflow_uri, a Secret): nothing
    # the platform renders listens for it.
    assert not [name for name in pods if "mlflow" in name]


def test_every_pod_of_the_platform_namespaces_is_isolated(cluster, pods):
    # Jobs and anything added later to a platform namespace: denied unless a policy admits it.
    for pod in list(pods.values()) + [Pod("managed/new-pod", SERVING, {"app": "x"}, HTTP),
                                      Pod("llm-training/new-pod", TRAINING, {}, HTTP)]:
        if pod.namespace in (SERVING, TRAINING):
            assert cluster.selecting(pod), pod.name
    assert cluster.reachers(SOURCES, Pod("managed/new-pod", SERVING, {"app": "x"}, HTTP)) == set()


def test_a_loosened_policy_is_caught(docs, pods):
    # The evaluator is not a rubber stamp: a vLLM policy admitting any pod of the namespace
    # lets the labelled client in; one without the namespace selector lets nobody new in
    # (a podSelector alone is the policy's own namespace) - both are visible.
    loose = copy.deepcopy(docs)
    vllm = next(d for d in loose if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "vllm-ingress")
    vllm["spec"]["ingress"][0]["from"][0]["podSelector"] = {}
    reach = Cluster(loose).reachers(list(pods.values()) + SOURCES, pods["managed/llama-8b"])
    assert "managed/labelled-client" in reach and "default/impostor-router" not in reach
    vllm["spec"]["ingress"][0]["from"][0].pop("namespaceSelector")
    vllm["spec"]["ingress"][0]["from"][0]["podSelector"] = {"matchLabels": {"app.kubernetes.io/component": "router"}}
    reach = Cluster(loose).reachers(list(pods.values()) + SOURCES, pods["llm-training/llm-inference"])
    assert reach == ROUTERS_AND_PROMETHEUS


def test_no_secret_value_reaches_any_rendered_file():
    canaries = [serving_render.HF_TOKEN_SENTINEL, serving_render.GRAFANA_SENTINEL,
                serving_render.GATEWAY_KEY_SENTINEL, finetune_render.SECRET_URI]
    homes = list(serving_render.render_all().values()) + [os.path.dirname(os.path.dirname(finetune_render.default()))]
    seen = 0
    for home in homes:
        for folder, _, files in os.walk(home):
            for name in files:
                if name == "vars.json" or (name.startswith("extra-") and name.endswith(".json")):
                    continue  # the test's own input, not a render
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                seen += 1
                for canary in canaries:
                    assert canary not in text, os.path.join(folder, name)
    assert seen > 20


# ---- the evaluator's semantics, on hand-written policies ----
def _netpol(namespace, selector, ingress=None, types=("Ingress",)):
    spec = {"podSelector": selector}
    if types is not None:
        spec["policyTypes"] = list(types)
    if ingress is not None:
        spec["ingress"] = ingress
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_semantics():
    target = Pod("a/t", "a", {"app": "t"}, (("http", 80, "TCP"), ("metrics", 9090, "TCP")))
    same = Pod("a/s", "a", {"role": "client"})
    other = Pod("b/s", "b", {"role": "client"})
    outside = Pod("ip", None, ip="10.1.2.3")
    everyone = [same, other, outside]
    assert Cluster([]).reachers(everyone, target) == {"a/s", "b/s", "ip"}  # selected by no policy: open
    assert Cluster([_netpol("b", {})]).reachers(everyone, target) == {"a/s", "b/s", "ip"}  # other namespace
    assert Cluster([_netpol("a", {"matchLabels": {"app": "x"}})]).reachers(everyone, target) == {"a/s", "b/s", "ip"}
    assert Cluster([_netpol("a", {})]).reachers(everyone, target) == set()  # default deny
    assert Cluster([_netpol("a", {}, types=("Egress",))]).reachers(everyone, target) == {"a/s", "b/s", "ip"}
    assert Cluster([_netpol("a", {}, types=None)]).reachers(everyone, target) == set()  # absent: Ingress
    assert Cluster([_netpol("a", {}, [{}])]).reachers(everyone, target) == {"a/s", "b/s", "ip"}  # allow all
    pod_only = [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]
    assert Cluster([_netpol("a", {}, pod_only)]).reachers(everyone, target) == {"a/s"}
    ns_only = [{"from": [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["b"]}]}}]}]
    assert Cluster([_netpol("a", {}, ns_only)]).reachers(everyone, target) == {"b/s"}
    both = [{"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [
        {"key": "role", "operator": "Exists"}]}}]}]
    assert Cluster([_netpol("a", {}, both)]).reachers(everyone + [Pod("b/x", "b", {})], target) == {"a/s", "b/s"}
    blocks = [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]
    assert Cluster([_netpol("a", {}, blocks)]).reachers(everyone, target) == set()
    blocks[0]["from"][0]["ipBlock"]["except"] = ["10.2.0.0/16"]
    assert Cluster([_netpol("a", {}, blocks)]).reachers(everyone, target) == {"ip"}
    # Ports: named, numbered with a range, protocol.
    cluster = Cluster([_netpol("a", {}, [{"ports": [{"port": "metrics"}]}])])
    assert not cluster.allowed(same, target, target.ports[0]) and cluster.allowed(same, target, target.ports[1])
    cluster = Cluster([_netpol("a", {}, [{"ports": [{"port": 70, "endPort": 85}]}])])
    assert cluster.allowed(same, target, target.ports[0]) and not cluster.allowed(same, target, target.ports[1])
    cluster = Cluster([_netpol("a", {}, [{"ports": [{"port": 80, "protocol": "UDP"}]}])])
    assert not cluster.allowed(same, target, target.ports[0])
    # Policies add up: any admitting rule of any selecting policy.
    union = Cluster([_netpol("a", {}), _netpol("a", {"matchLabels": {"app": "t"}}, ns_only)])
    assert union.reachers(everyone, target) == {"b/s"}
