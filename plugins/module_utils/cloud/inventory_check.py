"""Does the inventory plugin config find the machines the cloud model creates?

The aws_ec2 / gcp_compute configs in the inventory directory cannot read group_vars, so
their region/project and cluster filter are written out literally. Preflight compares
them with `cloud` and names both places when they disagree.
"""
from __future__ import annotations

import os
from typing import Any

import yaml

from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import CLUSTER_TAG

PLUGINS = {"aws": ("amazon.aws.aws_ec2", "aws_ec2"), "gcp": ("google.cloud.gcp_compute", "gcp_compute")}


def plugin_configs(sources: list[str], provider: str) -> list[tuple[str, dict]]:
    """(path, config) of every config file of the provider's plugin among the inventory sources."""
    names = PLUGINS[provider]
    paths: list[str] = []
    for source in sources or []:
        if os.path.isdir(source):
            paths += [os.path.join(source, f) for f in sorted(os.listdir(source))]
        elif os.path.isfile(source):
            paths.append(source)
    found = []
    for path in paths:
        if not path.endswith((f"{names[1]}.yml", f"{names[1]}.yaml")):
            continue
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
        if config.get("plugin") in names:
            found.append((path, config))
    return found


def _literal(value: Any) -> bool:
    return isinstance(value, str) and "{{" not in value and "{%" not in value


def mismatches(model: dict[str, Any], configs: list[tuple[str, dict]]) -> list[str]:
    """Messages naming the config file, its field and the cloud field that disagree."""
    errors = []
    cluster = model["cluster_name"]
    for path, config in configs:
        name = os.path.basename(path)
        if model["provider"] == "aws":
            regions = config.get("regions") or []
            if regions and all(_literal(r) for r in regions) and model["region"] not in regions:
                errors.append(f"{name}: regions {regions} does not include cloud.region {model['region']}; "
                              "make them the same")
            value = (config.get("filters") or {}).get(f"tag:{CLUSTER_TAG}")
            if _literal(value) and value != cluster:
                errors.append(f"{name}: filters.tag:{CLUSTER_TAG} is {value!r} but cloud.cluster_name is "
                              f"{cluster!r}; make them the same")
            if value is None:
                errors.append(f"{name}: add filters: {{tag:{CLUSTER_TAG}: {cluster}}} so only this cluster's "
                              "instances join the inventory")
        else:
            projects = config.get("projects") or []
            if projects and all(_literal(p) for p in projects) and model["project"] not in projects:
                errors.append(f"{name}: projects {projects} does not include cloud.project {model['project']}")
            wanted = f"labels.{CLUSTER_TAG} = {cluster}"
            filters = [f.strip() for f in config.get("filters") or [] if isinstance(f, str)]
            if not any(f == wanted for f in filters) and all(_literal(f) for f in filters):
                errors.append(f"{name}: filters should contain '{wanted}' (cloud.cluster_name)")
    return errors
