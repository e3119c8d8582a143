"""The one least-privilege traffic model both clouds' firewalls are generated from.

Ingress from outside the network: the API server (6443) and, with the SSH connection, 22,
from `admin_cidrs` only. Everything the cluster needs between its nodes (kubelet, etcd,
Calico BGP/VXLAN/Typha, IP-in-IP when Calico uses it, NodePorts, node-exporter, ICMP)
from the node network only. Egress: anything inside the node network, and HTTP/HTTPS out (apt, container
registries, the Hugging Face hub, SSM); nothing else.
"""
from __future__ import annotations

from typing import Any

# (name, protocol, first port, last port, node scope). Protocol "ipip" is IP protocol 4.
CLUSTER_INGRESS = (
    ("kubelet", "tcp", 10250, 10250, "all"),
    ("nodeport-tcp", "tcp", 30000, 32767, "all"),
    ("nodeport-udp", "udp", 30000, 32767, "all"),
    ("calico-bgp", "tcp", 179, 179, "all"),
    ("calico-vxlan", "udp", 4789, 4789, "all"),
    ("calico-typha", "tcp", 5473, 5473, "all"),
    ("calico-ipip", "ipip", None, None, "all"),
    ("node-exporter", "tcp", 9100, 9100, "all"),
    ("icmp", "icmp", None, None, "all"),
    ("etcd", "tcp", 2379, 2380, "control_plane"),
    ("kube-apiserver-nodes", "tcp", 6443, 6443, "control_plane"),
)
EGRESS_WEB_PORTS = (80, 443)
API_PORT = 6443
SSH_PORT = 22


def rules(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Every allowed flow as {name, direction, protocol, ports: (first, last)|None, sources|destinations, scope}."""
    inside = [model["network_cidr"]]
    admin = list(model["admin_cidrs"])
    flows = [{"name": "kube-apiserver-admin", "direction": "ingress", "protocol": "tcp", "ports": (API_PORT, API_PORT),
              "cidrs": admin, "scope": "control_plane"}]
    if model["connection"] == "ssh":
        flows.append({"name": "ssh-admin", "direction": "ingress", "protocol": "tcp", "ports": (SSH_PORT, SSH_PORT),
                      "cidrs": admin, "scope": "all"})
    ipip = model.get("calico_encapsulation", "VXLANCrossSubnet").startswith("IPIP")
    for name, proto, first, last, scope in CLUSTER_INGRESS:
        if proto == "ipip" and not ipip:
            continue
        flows.append({"name": name, "direction": "ingress", "protocol": proto,
                      "ports": (first, last) if first is not None else None, "cidrs": inside, "scope": scope})
    flows.append({"name": "egress-internal", "direction": "egress", "protocol": "all", "ports": None,
                  "cidrs": inside, "scope": "all"})
    for port in EGRESS_WEB_PORTS:
        flows.append({"name": f"egress-{port}", "direction": "egress", "protocol": "tcp", "ports": (port, port),
                      "cidrs": ["0.0.0.0/0"], "scope": "all"})
    return flows
