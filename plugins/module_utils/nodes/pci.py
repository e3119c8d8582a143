"""PCI inventory from sysfs and GPU detection; knows nothing about Ansible.

Ansible's setup module gathers no PCI facts, and hostnames lie about hardware, so GPU
nodes are found from /sys/bus/pci/devices (the same data `lspci -n` prints).
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

NVIDIA_VENDOR_ID = "0x10de"
# PCI class 0x03xxxx is "display controller" (VGA 0x0300, 3D 0x0302). NVIDIA also ships
# audio and USB functions on the same card (vendor 0x10de); those are not GPUs.
DISPLAY_CLASS_PREFIX = "0x03"


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip().lower()
    except OSError:
        return ""


def read_pci_devices(sysfs_root: str = "/sys/bus/pci/devices") -> list[dict[str, str]]:
    """One dict per PCI function: address, vendor, device, class (hex strings as sysfs has them)."""
    if not os.path.isdir(sysfs_root):
        return []
    devices = []
    for address in sorted(os.listdir(sysfs_root)):
        base = os.path.join(sysfs_root, address)
        devices.append({
            "address": address,
            "vendor": _read(os.path.join(base, "vendor")),
            "device": _read(os.path.join(base, "device")),
            "class": _read(os.path.join(base, "class")),
        })
    return devices


def _hex(value: object) -> str:
    """Normalise '10de', '0x10DE', 4318 to '0x10de' so inventories can write either form."""
    if isinstance(value, int):
        return f"0x{value:04x}"
    text = str(value or "").strip().lower()
    return text if text.startswith("0x") else f"0x{text}"


def nvidia_gpus(devices: Iterable[Mapping[str, object]] | None) -> list[dict[str, str]]:
    """The NVIDIA display-class functions among `devices` (empty list when there are none)."""
    found = []
    for device in devices or []:
        if _hex(device.get("vendor")) != NVIDIA_VENDOR_ID:
            continue
        # A device without a class (hand-written fake facts) counts as a GPU.
        pci_class = device.get("class")
        if pci_class and not _hex(pci_class).startswith(DISPLAY_CLASS_PREFIX):
            continue
        found.append({key: str(value) for key, value in device.items()})
    return found
