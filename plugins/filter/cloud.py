"""Filters of the infra layer (preflight, aws_infra, gcp_infra); logic in module_utils.cloud."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.cloud import aws_plan, gcp_plan, inventory_check
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import normalize_cloud
from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError


def cloud_normalize(cloud, pod_cidr=None, service_cidr=None, check_files=True, encapsulation="VXLANCrossSubnet"):
    try:
        return normalize_cloud(cloud, pod_cidr, service_cidr, bool(check_files), str(encapsulation))
    except InventoryError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def cloud_inventory_mismatches(model, sources):
    return inventory_check.mismatches(model, inventory_check.plugin_configs(list(sources or []), model["provider"]))


def cloud_inventory_configs(model, sources):
    return [path for path, _config in inventory_check.plugin_configs(list(sources or []), model["provider"])]


def cloud_aws_plan(model, available_azs=None):
    try:
        return aws_plan.plan(model, list(available_azs or []))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def cloud_aws_latest_image(images, arch, query):
    try:
        return aws_plan.latest_image(list(images or []), str(arch), str(query))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def cloud_aws_stale_instances(found, planned):
    return aws_plan.stale_instances(list(found or []), list(planned or []))


def cloud_gcp_plan(model, ssh_public_key=""):
    return gcp_plan.plan(model, str(ssh_public_key or ""))


class FilterModule:
    def filters(self):
        return {
            "cloud_normalize": cloud_normalize,
            "cloud_inventory_mismatches": cloud_inventory_mismatches,
            "cloud_inventory_configs": cloud_inventory_configs,
            "cloud_aws_plan": cloud_aws_plan,
            "cloud_aws_latest_image": cloud_aws_latest_image,
            "cloud_aws_stale_instances": cloud_aws_stale_instances,
            "cloud_gcp_plan": cloud_gcp_plan,
        }
