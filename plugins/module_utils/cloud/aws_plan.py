"""What the aws_infra role asks AWS for, as data: subnets, security groups, IAM, instances.

The role loops over these lists and passes each field to one amazon.aws module, so what
is created is decided (and unit-tested) here; tests/integration/test_aws_infra.py checks
that AWS (moto) ends up with exactly this.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.cloud import ports
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import CLUSTER_TAG, ROLE_TAG, expand_instances

SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# Debian's images name the architecture amd64/arm64, EC2 says x86_64/arm64.
DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
ASSUME_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def base_tags(model: dict[str, Any]) -> dict[str, str]:
    """Tags on every resource: the cluster tag finds them again (inventory, scaling, teardown)."""
    cluster = model["cluster_name"]
    return {**model["tags"], CLUSTER_TAG: cluster, f"kubernetes.io/cluster/{cluster}": "owned"}


def zones(model: dict[str, Any], available: list[str] | None) -> list[str]:
    """cloud.azs, or the region's first az_count zones (sorted names) plus any zone a node pins."""
    if model["azs"]:
        chosen = list(model["azs"])
    else:
        usable = sorted(available or [])
        if not usable:
            raise ValueError(f"no availability zones are available in {model['region']}; set cloud.azs")
        chosen = usable[: model["az_count"]]
    for node in model["nodes"]:
        if node["az"] and node["az"] not in chosen:
            chosen.append(node["az"])
    return chosen


def subnets(model: dict[str, Any], azs: list[str]) -> list[dict[str, Any]]:
    """One public subnet per zone (and a private one with private_subnets), 16 equal blocks of the network."""
    net = ipaddress.ip_network(model["network_cidr"])
    blocks = list(net.subnets(new_prefix=min(net.prefixlen + 4, 28)))
    half = len(blocks) // 2
    if len(azs) > half:
        raise ValueError(f"cloud.network_cidr {net} has room for {half} zones, {len(azs)} requested")
    result = []
    for index, zone in enumerate(azs):
        result.append(
            {
                "name": f"{model['cluster_name']}-public-{zone}",
                "az": zone,
                "cidr": str(blocks[index]),
                "tier": "public",
                "map_public": True,
            }
        )
        if model["private_subnets"]:
            result.append(
                {
                    "name": f"{model['cluster_name']}-private-{zone}",
                    "az": zone,
                    "cidr": str(blocks[half + index]),
                    "tier": "private",
                    "map_public": False,
                }
            )
    return result


def _sg_rule(flow: dict[str, Any]) -> dict[str, Any]:
    proto = {"ipip": "4", "all": "all"}.get(flow["protocol"], flow["protocol"])
    rule: dict[str, Any] = {"proto": proto, "cidr_ip": list(flow["cidrs"]), "rule_desc": flow["name"]}
    if flow["ports"]:
        rule["from_port"], rule["to_port"] = flow["ports"]
    elif flow["protocol"] in ("icmp", "ipip"):
        # "All ICMP types" / "all ports" (AWS ignores ports for IP protocols other than tcp/udp).
        rule["from_port"], rule["to_port"] = -1, -1
    return rule


def security_groups(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Two groups: every node gets `<cluster>-nodes`; control-plane nodes add `<cluster>-control-plane`."""
    flows = ports.rules(model)
    cluster = model["cluster_name"]
    groups = []
    for scope, suffix, description in (
        ("all", "nodes", "llmops nodes: intra-cluster traffic, SSH from admins"),
        ("control_plane", "control-plane", "llmops control plane: API from admins, etcd"),
    ):
        mine = [f for f in flows if f["scope"] == scope]
        groups.append(
            {
                "name": f"{cluster}-{suffix}",
                "description": description,
                "rules": [_sg_rule(f) for f in mine if f["direction"] == "ingress"],
                # Egress lives on the nodes group only (a union across groups would be the same).
                "rules_egress": [_sg_rule(f) for f in mine if f["direction"] == "egress"],
            }
        )
    return groups


def instances(model: dict[str, Any], azs: list[str]) -> list[dict[str, Any]]:
    cluster = model["cluster_name"]
    tier = "private" if model["private_subnets"] else "public"
    result = []
    for machine in expand_instances(cluster, model["nodes"], azs):
        groups = [f"{cluster}-nodes"] + ([f"{cluster}-control-plane"] if machine["role"] == "control_plane" else [])
        result.append(
            {
                "name": machine["name"],
                "role": machine["role"],
                "type": machine["type"],
                "az": machine["zone"],
                "subnet": f"{cluster}-{tier}-{machine['zone']}",
                "public_ip": not model["private_subnets"],
                "security_groups": groups,
                "disk_gib": machine["disk_gib"],
                "arch": machine["arch"],
                "gpus": machine["gpus"],
                "tags": {**base_tags(model), "Name": machine["name"], ROLE_TAG: machine["role"]},
            }
        )
    return result


def image_filters(model: dict[str, Any]) -> list[dict[str, Any]]:
    """One ec2_ami_info query per architecture the nodes need (or the pinned id)."""
    image = model["image"]
    if "id" in image:
        return [{"arch": arch, "image_ids": [image["id"]], "owners": [], "filters": {}} for arch in model["archs"]]
    return [
        {
            "arch": arch,
            "image_ids": [],
            "owners": [image["owner"]],
            "filters": {
                "name": image["name"].replace("{arch}", DEBIAN_ARCH[arch]),
                "architecture": arch,
                "state": "available",
            },
        }
        for arch in model["archs"]
    ]


def latest_image(images: list[dict[str, Any]], arch: str, query: str) -> dict[str, str]:
    """The newest matching image (by creation_date); a clear error when nothing matches."""
    usable = [i for i in images if i.get("architecture", arch) == arch]
    if not usable:
        raise ValueError(
            f"cloud.image: no {arch} image matches {query}; check owner/name or the pinned id in this region"
        )
    best = max(usable, key=lambda i: (i.get("creation_date") or "", i["image_id"]))
    return {
        "image_id": best["image_id"],
        "root_device_name": best.get("root_device_name") or "/dev/xvda",
        "name": best.get("name", ""),
    }


def stale_instances(found: list[dict[str, Any]], planned: list[dict[str, Any]]) -> list[str]:
    """Instance ids tagged for this cluster whose Name is no longer planned (count lowered)."""
    names = {p["name"] for p in planned}
    return sorted(
        i["instance_id"]
        for i in found
        if (i.get("tags") or {}).get("Name") not in names
        and (i.get("state") or {}).get("name") not in ("terminated", "shutting-down")
    )


def iam(model: dict[str, Any]) -> dict[str, Any]:
    name = f"{model['cluster_name']}-node"
    return {
        "role_name": name,
        "profile_name": name,
        "managed_policies": [SSM_POLICY_ARN],
        "assume_role_policy": json.dumps(ASSUME_ROLE_POLICY, sort_keys=True),
    }


def plan(model: dict[str, Any], available_azs: list[str] | None = None) -> dict[str, Any]:
    azs = zones(model, available_azs)
    return {
        "azs": azs,
        "tags": base_tags(model),
        "vpc_name": f"{model['cluster_name']}-vpc",
        "subnets": subnets(model, azs),
        "security_groups": security_groups(model),
        "iam": iam(model),
        "key_name": f"{model['cluster_name']}-admin" if model["connection"] == "ssh" else "",
        "images": image_filters(model),
        "instances": instances(model, azs),
        "nat": model["private_subnets"],
    }
