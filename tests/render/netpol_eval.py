"""Who can reach whom, computed from NetworkPolicy objects (ingress only).

Implements the Kubernetes semantics the platform's policies rely on, independently of the
builder that wrote them (plugins/module_utils/k8s/network_policy.py):

- a pod is isolated for ingress when some policy of its namespace selects it (podSelector,
  `{}` selects all) and lists Ingress in policyTypes (absent policyTypes means Ingress, plus
  Egress when there are egress rules); a pod no policy isolates accepts everything;
- an isolated pod accepts a connection when some selecting policy has a rule whose `from`
  matches the source (absent or empty: everyone) and whose `ports` match the port (absent or
  empty: every port; a named port is the container port of that name, `endPort` a range);
- a peer with only podSelector matches pods of the policy's namespace; only namespaceSelector,
  every pod of the selected namespaces; both, pods matching both; ipBlock, addresses in the
  CIDR and not in its `except` (only sources outside the pod network are given addresses here).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import k8s_policy as policy

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
POD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job")


@dataclass(frozen=True)
class Pod:
    """A source or target: a pod (namespace + labels + container ports) or, with namespace
    None, an address outside the pod network."""

    name: str
    namespace: Optional[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[tuple[str, int, str], ...] = ()  # (name, number, protocol)
    ip: Optional[str] = None


def pods(docs: Iterable[dict[str, Any]]) -> list[Pod]:
    """The pod template of every workload, named <namespace>/<workload name>."""
    out = []
    for obj in docs:
        if obj.get("kind") not in POD_KINDS:
            continue
        spec = policy.pod_spec(obj)
        ports = tuple((p.get("name", ""), int(p["containerPort"]), p.get("protocol", "TCP"))
                      for c in spec["containers"] for p in c.get("ports", []))
        namespace = obj["metadata"]["namespace"]
        out.append(Pod(f"{namespace}/{obj['metadata']['name']}", namespace, dict(policy.pod_labels(obj)), ports))
    return out


def namespace_labels(docs: Iterable[dict[str, Any]], namespace: str) -> dict[str, str]:
    """The API server's kubernetes.io/metadata.name plus the labels of a rendered Namespace."""
    labels: dict[str, str] = {}
    for obj in docs:
        if obj.get("kind") == "Namespace" and obj["metadata"]["name"] == namespace:
            labels.update(obj["metadata"].get("labels") or {})
    labels[NAMESPACE_LABEL] = namespace
    return labels


def _types(spec: Mapping[str, Any]) -> list[str]:
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _peer_matches(peer: Mapping[str, Any], policy_ns: str, source: Pod, ns_labels) -> bool:
    if "ipBlock" in peer:
        if source.ip is None:
            return False
        address = ipaddress.ip_address(source.ip)
        block = peer["ipBlock"]
        return (address in ipaddress.ip_network(block["cidr"], strict=False)
                and not any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []))
    if source.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not policy.selector_matches(peer["namespaceSelector"], ns_labels(source.namespace)):
            return False
    elif source.namespace != policy_ns:
        return False
    return "podSelector" not in peer or policy.selector_matches(peer["podSelector"], source.labels)


def _port_matches(rule_port: Mapping[str, Any], port: tuple[str, int, str]) -> bool:
    name, number, protocol = port
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return wanted == name
    return int(wanted) <= number <= int(rule_port.get("endPort", wanted))


class Cluster:
    def __init__(self, docs: list[dict[str, Any]]):
        self.docs = docs
        self.policies = policy.by_kind(docs, "NetworkPolicy")

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return namespace_labels(self.docs, namespace)

    def selecting(self, target: Pod) -> list[dict[str, Any]]:
        """The policies that isolate `target` for ingress."""
        return [p for p in self.policies
                if p["metadata"]["namespace"] == target.namespace and "Ingress" in _types(p["spec"])
                and policy.selector_matches(p["spec"].get("podSelector"), target.labels)]

    def allowed(self, source: Pod, target: Pod, port: tuple[str, int, str]) -> bool:
        selecting = self.selecting(target)
        if not selecting:
            return True
        for pol in selecting:
            for rule in pol["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                if peers and not any(_peer_matches(p, pol["metadata"]["namespace"], source, self.ns_labels)
                                     for p in peers):
                    continue
                ports = rule.get("ports") or []
                if ports and not any(_port_matches(p, port) for p in ports):
                    continue
                return True
        return False

    def reachers(self, sources: Iterable[Pod], target: Pod) -> set[str]:
        """Names of the sources that can open a connection to some container port of target."""
        return {s.name for s in sources if s is not target
                and any(self.allowed(s, target, port) for port in target.ports)}
