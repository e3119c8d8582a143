"""What the gcp_infra role asks Compute Engine for, as the google.cloud modules' arguments.

No GCP emulator exists, so this is the tested surface: tests/unit/cloud/test_gcp_plan.py
asserts the exact network, subnetwork, firewall rules, service account and instances, and
that the role passes every key of these dicts to its module unchanged.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.cloud import ports
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import CLUSTER_TAG, ROLE_TAG, expand_instances

API = "https://www.googleapis.com/compute/v1"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def _tag(model: dict[str, Any], scope: str) -> str:
    return f"{model['cluster_name']}-{'control-plane' if scope == 'control_plane' else 'node'}"


def network_link(model: dict[str, Any]) -> str:
    return f"{API}/projects/{model['project']}/global/networks/{model['cluster_name']}-net"


def _allowed(flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group flows by protocol into GCP's allowed/denied entries: [{ip_protocol, ports}]."""
    by_proto: dict[str, list[str]] = {}
    for flow in flows:
        entry = by_proto.setdefault(flow["protocol"], [])
        if flow["ports"]:
            first, last = flow["ports"]
            entry.append(str(first) if first == last else f"{first}-{last}")
    result = []
    for proto in sorted(by_proto):
        item: dict[str, Any] = {"ip_protocol": proto}
        if by_proto[proto]:
            item["ports"] = sorted(set(by_proto[proto]), key=lambda p: int(p.split("-")[0]))
        result.append(item)
    return result


def firewalls(model: dict[str, Any]) -> list[dict[str, Any]]:
    """One rule per (direction, origin, node scope), plus a low-priority egress deny.

    GCP allows all egress implicitly; the deny rule makes the allow rules the whole list.
    """
    cluster = model["cluster_name"]
    flows = ports.rules(model)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for flow in flows:
        if flow["cidrs"] == list(model["admin_cidrs"]) and flow["direction"] == "ingress":
            origin = "admin"
        elif flow["cidrs"] == [model["network_cidr"]]:
            origin = "internal"
        else:
            origin = "web"
        groups.setdefault((flow["direction"], origin, flow["scope"]), []).append(flow)
    result = []
    for (direction, origin, scope), mine in sorted(groups.items()):
        short = "in" if direction == "ingress" else "out"
        rule = {
            "name": f"{cluster}-{short}-{origin}-{'control-plane' if scope == 'control_plane' else 'nodes'}",
            "description": "llmops: " + ", ".join(f["name"] for f in mine),
            "network": {"selfLink": network_link(model)},
            "direction": direction.upper(),
            "priority": 1000,
            "allowed": _allowed(mine),
            "target_tags": [_tag(model, scope)],
        }
        key = "source_ranges" if direction == "ingress" else "destination_ranges"
        rule[key] = list(mine[0]["cidrs"])
        result.append(rule)
    result.append({
        "name": f"{cluster}-out-deny-nodes",
        "description": "llmops: no egress beyond the allow rules",
        "network": {"selfLink": network_link(model)},
        "direction": "EGRESS",
        "priority": 65000,
        "denied": [{"ip_protocol": "all"}],
        "destination_ranges": ["0.0.0.0/0"],
        "target_tags": [_tag(model, "all")],
    })
    return result


def service_account(model: dict[str, Any]) -> dict[str, str]:
    """A node identity with no project roles (least privilege); grant roles yourself if needed."""
    account = f"{model['cluster_name']}-node"
    return {"name": f"{account}@{model['project']}.iam.gserviceaccount.com",
            "display_name": f"llmops {model['cluster_name']} nodes"}


def _source_image(model: dict[str, Any]) -> str:
    image = model["image"]
    if "id" in image:
        return image["id"]
    return f"projects/{image['project']}/global/images/family/{image['family']}"


def instances(model: dict[str, Any], ssh_public_key: str = "") -> list[dict[str, Any]]:
    project, region, cluster = model["project"], model["region"], model["cluster_name"]
    subnet = f"{API}/projects/{project}/regions/{region}/subnetworks/{cluster}-nodes"
    email = service_account(model)["name"]
    result = []
    for machine in expand_instances(cluster, model["nodes"], model["azs"]):
        zone = machine["zone"]
        has_gpu = bool(machine["gpus"])
        metadata = {"block-project-ssh-keys": "TRUE"}
        if ssh_public_key:
            metadata["ssh-keys"] = f"{model['ssh_user']}:{ssh_public_key.strip()}"
        tags = [_tag(model, "all")] + ([_tag(model, "control_plane")] if machine["role"] == "control_plane" else [])
        instance = {
            "name": machine["name"],
            "zone": zone,
            "machine_type": machine["type"],
            "disks": [{"auto_delete": True, "boot": True, "initialize_params": {
                "source_image": _source_image(model), "disk_size_gb": machine["disk_gib"],
                "disk_type": f"projects/{project}/zones/{zone}/diskTypes/pd-balanced"}}],
            "network_interfaces": [{"network": {"selfLink": network_link(model)},
                                    "subnetwork": {"selfLink": subnet},
                                    "access_configs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]}],
            # GPUs cannot live-migrate: GPU VMs must stop for host maintenance.
            "scheduling": {"on_host_maintenance": "TERMINATE" if has_gpu else "MIGRATE",
                           "automatic_restart": True, "preemptible": False},
            "service_accounts": [{"email": email, "scopes": SCOPES}],
            "labels": {**model["tags"], CLUSTER_TAG: cluster, ROLE_TAG: machine["role"]},
            "tags": {"items": tags},
            "metadata": metadata,
            # Secure Boot would refuse the unsigned NVIDIA kernel modules the nodes layer builds.
            "shielded_instance_config": {"enable_secure_boot": False, "enable_vtpm": True,
                                         "enable_integrity_monitoring": True},
            "guest_accelerators": [],
        }
        accel = machine.get("accelerator")
        if accel and not machine["bundled"]:
            instance["guest_accelerators"] = [{
                "accelerator_type": f"projects/{project}/zones/{zone}/acceleratorTypes/{accel['type']}",
                "accelerator_count": accel["count"]}]
        result.append(instance)
    return result


def plan(model: dict[str, Any], ssh_public_key: str = "") -> dict[str, Any]:
    net = ipaddress.ip_network(model["network_cidr"])
    block = next(net.subnets(new_prefix=min(net.prefixlen + 4, 28)))
    cluster = model["cluster_name"]
    return {
        "network": {"name": f"{cluster}-net", "auto_create_subnetworks": False,
                    "description": f"llmops cluster {cluster}"},
        "subnetwork": {"name": f"{cluster}-nodes", "region": model["region"], "ip_cidr_range": str(block),
                       "network": {"selfLink": network_link(model)}, "private_ip_google_access": True,
                       "description": f"llmops cluster {cluster} nodes"},
        "firewalls": firewalls(model),
        "service_account": service_account(model),
        "instances": instances(model, ssh_public_key),
    }
