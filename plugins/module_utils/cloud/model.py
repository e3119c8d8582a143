"""Validation and normalisation of the inventory's `cloud` model (the infra layer's input).

Pure Python, no Ansible imports: preflight (filter `cloud_normalize`), the aws_infra and
gcp_infra roles and the unit tests all read the model through `normalize_cloud`. Every
error names the field (`cloud.nodes[2].type`) and says how to fix it. Checks that need the
provider's API (quotas, zone capacity) are left to it; what is knowable offline is checked
here, before any API call.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.cloud import aws_catalog, gcp_catalog
from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError

PROVIDERS = ("aws", "gcp")
ROLES = ("control_plane", "worker", "gpu_worker")
TOP_KEYS = {
    "provider",
    "region",
    "cluster_name",
    "admin_cidrs",
    "allow_world",
    "network_cidr",
    "azs",
    "az_count",
    "private_subnets",
    "connection",
    "ssh_public_key_file",
    "ssh_user",
    "ssm_bucket",
    "image",
    "imds_hop_limit",
    "tags",
    "project",
    "nodes",
}
NODE_KEYS = {"role", "type", "count", "disk_gib", "az", "accelerator"}
CLUSTER_RE = re.compile(r"^[a-z]([-a-z0-9]{0,22}[a-z0-9])?$")
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
GCP_PROJECT_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
TAG_KEY_RE = re.compile(r"^[a-z][-_a-z0-9]{0,62}$")
DEFAULT_DISK_GIB = {"control_plane": 50, "worker": 50, "gpu_worker": 200}
MAX_COUNT = 50
# Names the infra layer owns on every resource; user tags may not override them.
CLUSTER_TAG = "llmops-cluster"
ROLE_TAG = "llmops-role"


def _err(field: str, message: str) -> InventoryError:
    return InventoryError(field, message)


def _bool(cloud: dict, key: str, default: bool) -> bool:
    value = cloud.get(key, default)
    if not isinstance(value, bool):
        raise _err(f"cloud.{key}", f"must be true or false, got {value!r}")
    return value


def _int(value: Any, field: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        else:
            raise _err(field, f"must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise _err(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _network(value: Any, field: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise _err(field, f"{value!r} is not a CIDR; write e.g. 203.0.113.7/32") from None
    if net.version != 4:
        raise _err(field, f"{value} is IPv6; only IPv4 CIDRs are supported")
    if str(net) != str(value) and "/" in str(value):
        raise _err(field, f"{value} has host bits set; write the network {net}")
    return net


def _admin_cidrs(cloud: dict, allow_world: bool) -> list[str]:
    cidrs = cloud.get("admin_cidrs")
    if not isinstance(cidrs, list) or not cidrs:
        raise _err(
            "cloud.admin_cidrs",
            "must list the addresses allowed to reach the API server (6443) and SSH, "
            "e.g. [203.0.113.7/32] (your public IP: curl -s https://checkip.amazonaws.com)",
        )
    result = []
    for index, value in enumerate(cidrs):
        net = _network(value, f"cloud.admin_cidrs[{index}]")
        if net.prefixlen == 0 and not allow_world:
            raise _err(
                f"cloud.admin_cidrs[{index}]",
                f"{net} opens the API server and SSH to the whole internet; "
                "list your own addresses (e.g. 203.0.113.7/32) or set cloud.allow_world: true on purpose",
            )
        result.append(str(net))
    return result


def _network_cidr(cloud: dict, pod_cidr: str | None, service_cidr: str | None) -> str:
    net = _network(cloud.get("network_cidr", "10.10.0.0/16"), "cloud.network_cidr")
    if not net.is_private:
        raise _err("cloud.network_cidr", f"{net} is not a private range; use e.g. 10.10.0.0/16")
    if net.prefixlen > 22:
        raise _err("cloud.network_cidr", f"/{net.prefixlen} is too small for one subnet per zone; use /16../22")
    for name, other in (("cluster_pod_cidr", pod_cidr), ("cluster_service_cidr", service_cidr)):
        if other and net.overlaps(ipaddress.ip_network(str(other), strict=False)):
            raise _err(
                "cloud.network_cidr",
                f"{net} overlaps {name} {other}; pick a node network that "
                "does not overlap the pod and service CIDRs (e.g. 10.10.0.0/16)",
            )
    return str(net)


def _region(provider: str, region: Any) -> str:
    if not isinstance(region, str) or not region:
        example = "us-east-1" if provider == "aws" else "us-central1"
        raise _err("cloud.region", f"is missing; e.g. region: {example}")
    if provider == "aws":
        known = aws_catalog.region_names()
        if not AWS_REGION_RE.match(region) or (known is not None and region not in known):
            raise _err("cloud.region", f"{region!r} is not an AWS region; e.g. us-east-1, eu-west-1")
    elif not gcp_catalog.REGION_RE.match(region):
        raise _err("cloud.region", f"{region!r} is not a GCP region; e.g. us-central1, europe-west4")
    return region


def _zone_in_region(provider: str, region: str, zone: Any, field: str) -> str:
    if provider == "aws":
        ok = isinstance(zone, str) and re.fullmatch(re.escape(region) + r"[a-z]", zone)
    else:
        ok = isinstance(zone, str) and re.fullmatch(re.escape(region) + r"-[a-z]", zone)
    if not ok:
        example = f"{region}a" if provider == "aws" else f"{region}-a"
        raise _err(field, f"{zone!r} is not a zone of region {region}; e.g. {example}")
    return zone


def _image(provider: str, image: Any) -> dict[str, str]:
    if provider == "aws":
        image = image if image is not None else {"owner": "136693071363", "name": "debian-12-{arch}-*"}
        if not isinstance(image, dict) or not (set(image) <= {"id", "owner", "name"}):
            raise _err("cloud.image", "write {owner: 136693071363, name: 'debian-12-{arch}-*'} or {id: ami-...}")
        if "id" in image:
            if not AMI_RE.match(str(image["id"])):
                raise _err("cloud.image.id", f"{image['id']!r} is not an AMI id (ami-0123456789abcdef0)")
            return {"id": str(image["id"])}
        if not image.get("owner") or not image.get("name"):
            raise _err(
                "cloud.image", "needs both owner (account id or alias) and name (a pattern, e.g. debian-12-{arch}-*)"
            )
        return {"owner": str(image["owner"]), "name": str(image["name"])}
    image = image if image is not None else {"project": "debian-cloud", "family": "debian-12"}
    if not isinstance(image, dict) or not (set(image) <= {"id", "project", "family"}):
        raise _err(
            "cloud.image", "write {project: debian-cloud, family: debian-12} or {id: projects/P/global/images/NAME}"
        )
    if "id" in image:
        return {"id": str(image["id"])}
    if not image.get("project") or not image.get("family"):
        raise _err("cloud.image", "needs both project and family, e.g. {project: debian-cloud, family: debian-12}")
    return {"project": str(image["project"]), "family": str(image["family"])}


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err("cloud.tags", "must be a mapping of extra tags/labels, e.g. {team: ml}")
    for key in value:
        if not isinstance(key, str) or not TAG_KEY_RE.match(key):
            raise _err(f"cloud.tags.{key}", "keys are lowercase letters, digits, '-' and '_' (they are GCP labels too)")
        if key in (CLUSTER_TAG, ROLE_TAG) or key.lower() == "name":
            raise _err(f"cloud.tags.{key}", "is set by the infra layer itself; remove it")
    return {k: str(v) for k, v in value.items()}


def _aws_type(region: str, node_type: str, role: str, field: str, warnings: list[str]) -> dict[str, Any]:
    info = aws_catalog.describe(node_type)
    if info["known"] is False:
        raise _err(field, f"{node_type!r} is not an EC2 instance type; e.g. t3.medium, g4dn.xlarge")
    offered = aws_catalog.region_offers(region, node_type)
    if offered is False:
        near = region.split("-")[0]  # same geography first (eu-, us-, ap-...)
        elsewhere = sorted(info["regions"] or [], key=lambda r: (r.split("-")[0] != near, r))[:6]
        raise _err(
            field,
            f"{node_type} is not offered in {region}; pick another type or region "
            f"(offered in e.g. {', '.join(elsewhere)})",
        )
    if offered is None:
        warnings.append(f"{field}: whether {region} offers {node_type} cannot be checked offline")
    _gpu_rule(role, info["gpus"], info["gpu_vendor"], node_type, field, warnings)
    return info


def _gcp_type(node: dict, role: str, field: str, warnings: list[str]) -> dict[str, Any]:
    machine = node["type"]
    if not gcp_catalog.MACHINE_RE.match(machine):
        raise _err(f"{field}.type", f"{machine!r} is not a machine type; e.g. e2-standard-4, g2-standard-96")
    accel = node.get("accelerator")
    if accel is not None:
        if not isinstance(accel, dict) or set(accel) != {"type", "count"}:
            raise _err(f"{field}.accelerator", "write {type: nvidia-tesla-t4, count: 1} (N1 machine types only)")
        if not machine.startswith("n1-"):
            raise _err(
                f"{field}.accelerator",
                f"{machine} has its GPUs built in or takes none; guest accelerators go on n1-* machine types only",
            )
        if accel["type"] not in gcp_catalog.N1_ACCELERATORS:
            raise _err(
                f"{field}.accelerator.type",
                f"{accel['type']!r} does not attach to N1; use one of {', '.join(gcp_catalog.N1_ACCELERATORS)}",
            )
        accel = {"type": accel["type"], "count": _int(accel["count"], f"{field}.accelerator.count", 1, 8)}
    info = gcp_catalog.describe(machine, accel)
    if info["known"] is None:
        warnings.append(f"{field}.type: {machine} is not in the offline machine-type table; GPUs not checked")
    _gpu_rule(role, info["gpus"], "NVIDIA" if info["gpus"] else None, machine, f"{field}.type", warnings)
    return {**info, "accelerator": accel}


def _gpu_rule(role: str, gpus: int | None, vendor: str | None, type_name: str, field: str, warnings: list[str]) -> None:
    if gpus is None and vendor is None:
        if role == "gpu_worker":
            warnings.append(f"{field}: whether {type_name} has an NVIDIA GPU cannot be checked offline")
        return
    if gpus is None:
        gpus = 1  # the family is known to carry GPUs of this vendor; the count is not known offline
    if role == "gpu_worker" and (gpus == 0 or vendor != "NVIDIA"):
        what = "has no GPU" if gpus == 0 else f"has {vendor} GPUs, not NVIDIA"
        raise _err(
            field,
            f"{type_name} {what}, but role gpu_worker needs an NVIDIA GPU; "
            "use e.g. g4dn.xlarge (AWS, T4) or g2-standard-96 (GCP, 8 x L4), or role worker",
        )
    if role != "gpu_worker" and gpus:
        warnings.append(f"{field}: {type_name} has {gpus} GPU(s) but role {role} will not schedule GPU pods")


def _nodes(cloud: dict, provider: str, region: str, azs: list[str], warnings: list[str]) -> list[dict]:
    nodes = cloud.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise _err("cloud.nodes", "must list node groups, e.g. [{role: control_plane, type: t3.medium, count: 1}]")
    result = []
    for index, node in enumerate(nodes):
        field = f"cloud.nodes[{index}]"
        if not isinstance(node, dict):
            raise _err(field, "must be a mapping with role, type and count")
        unknown = sorted(set(node) - NODE_KEYS)
        if unknown:
            raise _err(f"{field}.{unknown[0]}", f"unknown key; allowed keys are {', '.join(sorted(NODE_KEYS))}")
        role = node.get("role")
        if role not in ROLES:
            raise _err(f"{field}.role", f"{role!r} is not a node role; use one of {', '.join(ROLES)}")
        if not isinstance(node.get("type"), str) or not node["type"]:
            raise _err(f"{field}.type", "is missing; e.g. t3.medium (AWS) or e2-standard-4 (GCP)")
        count = _int(node.get("count", 1), f"{field}.count", 1, MAX_COUNT)
        disk = _int(node.get("disk_gib", DEFAULT_DISK_GIB[role]), f"{field}.disk_gib", 20, 16384)
        zone = node.get("az")
        if zone is not None:
            zone = _zone_in_region(provider, region, zone, f"{field}.az")
            if azs and zone not in azs:
                raise _err(f"{field}.az", f"{zone} is not in cloud.azs ({', '.join(azs)}); add it there")
        if provider == "aws":
            if "accelerator" in node:
                raise _err(f"{field}.accelerator", "is GCP-only; on AWS the instance type carries the GPUs")
            info = _aws_type(region, node["type"], role, f"{field}.type", warnings)
            entry = {
                "gpus": info["gpus"],
                "gpu_model": info["gpu_model"],
                "arch": info["arch"] or "x86_64",
                "accelerator": None,
                "bundled": True,
            }
        else:
            info = _gcp_type(node, role, field, warnings)
            entry = {
                "gpus": info["gpus"],
                "gpu_model": info["gpu_model"],
                "arch": "x86_64",
                "accelerator": info["accelerator"],
                "bundled": info["bundled"],
            }
        result.append({"role": role, "type": node["type"], "count": count, "disk_gib": disk, "az": zone, **entry})
    control = [n for n in result if n["role"] == "control_plane"]
    if not control:
        raise _err("cloud.nodes", "has no control_plane entry; add {role: control_plane, type: t3.medium, count: 1}")
    total = sum(n["count"] for n in control)
    if total % 2 == 0:
        raise _err(
            "cloud.nodes", f"{total} control-plane nodes cannot keep etcd quorum through a failure; use 1, 3 or 5"
        )
    return result


def expand_instances(cluster: str, nodes: list[dict], azs: list[str]) -> list[dict]:
    """One entry per machine: stable names (<cluster>-<role>-<i>, i counted per role) and zones.

    Unpinned machines go round-robin over `azs` by their index, so machine 0 of every role
    lands in the first zone (no cross-zone traffic by default) and scale-outs spread.
    """
    seen: dict[str, int] = {}
    result = []
    for node in nodes:
        for _copy in range(node["count"]):
            index = seen.get(node["role"], 0)
            seen[node["role"]] = index + 1
            zone = node["az"] or (azs[index % len(azs)] if azs else None)
            result.append(
                {
                    "name": f"{cluster}-{node['role'].replace('_', '-')}-{index}",
                    "index": index,
                    "zone": zone,
                    **{k: v for k, v in node.items() if k not in ("count", "az")},
                }
            )
    return result


ENCAPSULATIONS = ("VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None")


def normalize_cloud(
    cloud: Any,
    pod_cidr: str | None = None,
    service_cidr: str | None = None,
    check_files: bool = True,
    encapsulation: str = "VXLANCrossSubnet",
) -> dict[str, Any]:
    """Validate `cloud`; return it with every default filled in, plus `warnings`.

    `encapsulation` is the cluster layer's calico_encapsulation: the firewalls open IP-in-IP
    (protocol 4) only when Calico uses it.
    """
    if not isinstance(cloud, dict):
        raise _err("cloud", "must be a mapping with provider, region, cluster_name, admin_cidrs and nodes")
    unknown = sorted(set(cloud) - TOP_KEYS)
    if unknown:
        raise _err(f"cloud.{unknown[0]}", f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}")
    provider = cloud.get("provider")
    if provider not in PROVIDERS:
        raise _err("cloud.provider", f"{provider!r} is not supported; use aws or gcp")
    region = _region(provider, cloud.get("region"))
    cluster = cloud.get("cluster_name", "llmops")
    if not isinstance(cluster, str) or not CLUSTER_RE.match(cluster):
        raise _err(
            "cloud.cluster_name", f"{cluster!r}: use 1-24 lowercase letters, digits and '-', starting with a letter"
        )
    allow_world = _bool(cloud, "allow_world", False)
    private = _bool(cloud, "private_subnets", False)
    connection = cloud.get("connection", "ssh")
    if connection not in (("ssh", "ssm") if provider == "aws" else ("ssh",)):
        choices = "ssh or ssm" if provider == "aws" else "ssh (SSM is AWS-only)"
        raise _err("cloud.connection", f"{connection!r} is not supported here; use {choices}")
    if private and (provider != "aws" or connection != "ssm"):
        raise _err(
            "cloud.private_subnets",
            "nodes without public IPs are reachable only through SSM: "
            "set provider: aws and connection: ssm, or private_subnets: false",
        )
    ssm_bucket = cloud.get("ssm_bucket") or ""
    if connection == "ssm" and not BUCKET_RE.match(str(ssm_bucket)):
        raise _err(
            "cloud.ssm_bucket",
            "the SSM connection copies module files through an S3 bucket you own; "
            "name an existing bucket in the same region",
        )
    key_file = cloud.get("ssh_public_key_file") or ""
    if connection == "ssh":
        if not key_file:
            raise _err("cloud.ssh_public_key_file", "is needed with connection ssh; e.g. ~/.ssh/id_ed25519.pub")
        if check_files and not os.path.isfile(os.path.expanduser(str(key_file))):
            raise _err(
                "cloud.ssh_public_key_file",
                f"{key_file} does not exist on the controller; create one with ssh-keygen -t ed25519 or point at yours",
            )
    project = cloud.get("project")
    if provider == "gcp" and (not isinstance(project, str) or not GCP_PROJECT_RE.match(project)):
        raise _err("cloud.project", f"{project!r} is not a GCP project id; set project: my-project-123")
    azs = cloud.get("azs") or []
    if not isinstance(azs, list):
        raise _err("cloud.azs", "must be a list of zones, e.g. [us-east-1a, us-east-1b]")
    azs = [_zone_in_region(provider, region, z, f"cloud.azs[{i}]") for i, z in enumerate(azs)]
    if len(set(azs)) != len(azs):
        raise _err("cloud.azs", "lists a zone twice")
    if provider == "gcp" and not azs:
        raise _err("cloud.azs", f"is needed on GCP (zones are not listed offline); e.g. [{region}-a]")
    warnings: list[str] = []
    nodes = _nodes(cloud, provider, region, azs, warnings)
    hop_limit = _int(cloud.get("imds_hop_limit", 1), "cloud.imds_hop_limit", 1, 2)
    archs = sorted({n["arch"] for n in nodes})
    image = _image(provider, cloud.get("image"))
    if "id" in image and len(archs) > 1:
        raise _err(
            "cloud.image.id",
            f"one pinned image cannot boot both {' and '.join(archs)} types; "
            "use an owner+name pattern with {arch}, or one architecture",
        )
    if encapsulation not in ENCAPSULATIONS:
        raise _err(
            "calico_encapsulation",
            f"{encapsulation!r} is not a Calico encapsulation; use one of {', '.join(ENCAPSULATIONS)}",
        )
    return {
        "provider": provider,
        "region": region,
        "cluster_name": cluster,
        "admin_cidrs": _admin_cidrs(cloud, allow_world),
        "allow_world": allow_world,
        "network_cidr": _network_cidr(cloud, pod_cidr, service_cidr),
        "azs": azs,
        "az_count": _int(cloud.get("az_count", 2), "cloud.az_count", 1, 6),
        "private_subnets": private,
        "connection": connection,
        "ssm_bucket": str(ssm_bucket),
        "ssh_public_key_file": str(key_file),
        "ssh_user": str(cloud.get("ssh_user") or "admin"),
        "image": image,
        "archs": archs,
        "imds_hop_limit": hop_limit,
        "tags": _tags(cloud.get("tags")),
        "project": project if provider == "gcp" else None,
        "nodes": nodes,
        "calico_encapsulation": encapsulation,
        "warnings": warnings,
    }
