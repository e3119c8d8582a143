"""Filters for the host roles; the logic lives in module_utils.nodes."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.nodes.containerd import (
    ContainerdVersionError,
    config_schema_version,
    parse_containerd_version,
)
from ansible_collections.llmops.platform.plugins.module_utils.nodes.pci import nvidia_gpus


def containerd_version(output):
    try:
        return parse_containerd_version(str(output))
    except ContainerdVersionError as exc:
        raise AnsibleFilterError(str(exc)) from None


def containerd_config_version(output):
    try:
        return config_schema_version(str(output))
    except ContainerdVersionError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"nvidia_gpus": nvidia_gpus, "containerd_version": containerd_version,
                "containerd_config_version": containerd_config_version}
