#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin Ansible face of module_utils/nodes/pci: setup gathers no PCI facts, and GPU roles
# must decide from hardware (vendor 0x10de), not from hostnames or group names.
DOCUMENTATION = r"""
---
module: pci_facts
short_description: Gather PCI devices from sysfs as facts, and the NVIDIA GPUs among them
version_added: "0.1.0"
description:
  - Reads C(vendor), C(device) and C(class) of every function under O(sysfs_root) and sets
    C(pci_devices) and C(nvidia_gpus) (display-class functions of vendor C(0x10de)).
  - O(fake_devices) replaces what sysfs says; tests use it to simulate a GPU host.
options:
  sysfs_root:
    description: Directory with one entry per PCI function.
    type: path
    default: /sys/bus/pci/devices
  fake_devices:
    description: Use these devices (dicts with C(vendor), C(device), C(class)) instead of sysfs.
    type: list
    elements: dict
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Find NVIDIA GPUs
  llmops.platform.pci_facts:
"""

RETURN = r"""
ansible_facts:
  description: C(pci_devices) (all functions) and C(nvidia_gpus) (NVIDIA display functions).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.nodes.pci import (
    nvidia_gpus,
    read_pci_devices,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sysfs_root": {"type": "path", "default": "/sys/bus/pci/devices"},
            "fake_devices": {"type": "list", "elements": "dict"},
        },
        supports_check_mode=True,
    )
    fake = module.params["fake_devices"]
    devices = list(fake) if fake is not None else read_pci_devices(module.params["sysfs_root"])
    module.exit_json(changed=False, ansible_facts={
        "pci_devices": devices,
        "nvidia_gpus": nvidia_gpus(devices),
        "pci_devices_simulated": fake is not None,
    })


if __name__ == "__main__":
    main()
