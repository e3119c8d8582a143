"""What can be known about EC2 instance types and regions without calling AWS.

Three offline sources, each optional: botocore's EC2 service model (every instance type
name the API accepts, and the partitions' region names), and the data files moto ships
(the output of DescribeInstanceTypes and DescribeInstanceTypeOfferings per region, so GPU
model/count, CPU architecture and which regions offer a type). When a source is missing,
the check it would allow is reported as "not checkable offline" instead of guessed.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
from typing import Any


def _package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _load_json(path: str) -> Any:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=1)
def instance_type_names() -> frozenset[str] | None:
    """Every instance type name in botocore's EC2 model (None when botocore is absent)."""
    root = _package_dir("botocore")
    if not root:
        return None
    base = os.path.join(root, "data", "ec2")
    versions = sorted(os.listdir(base)) if os.path.isdir(base) else []
    for version in reversed(versions):
        for name in ("service-2.json.gz", "service-2.json"):
            path = os.path.join(base, version, name)
            if os.path.exists(path):
                return frozenset(_load_json(path)["shapes"]["InstanceType"]["enum"])
    return None


@functools.lru_cache(maxsize=1)
def region_names() -> frozenset[str] | None:
    root = _package_dir("botocore")
    path = os.path.join(root, "data", "endpoints.json") if root else ""
    if not path or not os.path.exists(path):
        return None
    return frozenset(r for p in _load_json(path)["partitions"] for r in p["regions"])


def _moto_resources() -> str | None:
    root = _package_dir("moto")
    path = os.path.join(root, "ec2", "resources") if root else ""
    return path if path and os.path.isdir(path) else None


@functools.lru_cache(maxsize=1)
def instance_types() -> dict[str, dict] | None:
    """DescribeInstanceTypes records by type name (None when the data is absent)."""
    res = _moto_resources()
    path = os.path.join(res, "instance_types.json.gz") if res else ""
    return _load_json(path) if path and os.path.exists(path) else None


@functools.lru_cache(maxsize=1)
def offerings() -> dict[str, frozenset[str]] | None:
    """Region -> instance types offered there (None when the data is absent)."""
    res = _moto_resources()
    base = os.path.join(res, "instance_type_offerings", "region") if res else ""
    if not base or not os.path.isdir(base):
        return None
    result = {}
    for name in os.listdir(base):
        region = name.split(".json")[0]
        result[region] = frozenset(o["InstanceType"] for o in _load_json(os.path.join(base, name)))
    return result


# GPU makers of families that the DescribeInstanceTypes data no longer lists (retired or
# being retired); counts are unknown offline, the vendor is enough to refuse an AMD card.
FAMILY_GPU_VENDOR = {"g2": "NVIDIA", "g3": "NVIDIA", "g3s": "NVIDIA", "p2": "NVIDIA", "p3": "NVIDIA",
                     "p3dn": "NVIDIA", "g4ad": "AMD"}


def describe(type_name: str) -> dict[str, Any]:
    """What is known offline about one type.

    Returns {known: bool|None, gpus: int|None, gpu_model, gpu_vendor, arch, vcpus,
    regions: set|None}; None means "cannot be known offline".
    """
    names = instance_type_names()
    known = None if names is None else type_name in names
    info = (instance_types() or {}).get(type_name)
    out: dict[str, Any] = {"known": known, "gpus": None, "gpu_model": None, "gpu_vendor": None,
                           "arch": None, "vcpus": None, "regions": None}
    if info is not None:
        out["known"] = True
        gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
        out["gpus"] = sum(g.get("Count", 0) for g in gpus)
        if gpus:
            out["gpu_model"] = gpus[0].get("Name")
            out["gpu_vendor"] = gpus[0].get("Manufacturer")
        archs = (info.get("ProcessorInfo") or {}).get("SupportedArchitectures") or []
        out["arch"] = "arm64" if archs == ["arm64"] else "x86_64"
        out["vcpus"] = (info.get("VCpuInfo") or {}).get("DefaultVCpus")
    elif type_name.split(".", 1)[0] in FAMILY_GPU_VENDOR:
        out["gpu_vendor"] = FAMILY_GPU_VENDOR[type_name.split(".", 1)[0]]
    table = offerings()
    if table is not None:
        regions = {r for r, types in table.items() if type_name in types}
        # A type no region lists (retired, or newer than the data) is unknown, not "nowhere".
        out["regions"] = regions or None
    return out


def region_offers(region: str, type_name: str) -> bool | None:
    """True/False when the offline data covers this region and type, else None."""
    table = offerings()
    if table is None or region not in table:
        return None
    if not any(type_name in types for types in table.values()):
        return None
    return type_name in table[region]
