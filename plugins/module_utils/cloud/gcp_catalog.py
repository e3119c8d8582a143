"""Offline knowledge of Compute Engine machine types: which carry NVIDIA GPUs, and how many.

Accelerator-optimized series (A2, A3, G2) come with their GPUs attached by the machine
type; N1 takes GPUs as guest accelerators. No machine-type -> zone availability ships with
any library here, so zone offerings are not checked offline (docs/cloud.md says so).
"""
from __future__ import annotations

import re

# machine type -> (GPU model, count); from Google's "GPU machine types" documentation.
BUNDLED_GPUS: dict[str, tuple[str, int]] = {
    **{f"g2-standard-{n}": ("nvidia-l4", c) for n, c in
       ((4, 1), (8, 1), (12, 1), (16, 1), (24, 2), (32, 1), (48, 4), (96, 8))},
    **{f"a2-highgpu-{c}g": ("nvidia-tesla-a100", c) for c in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("nvidia-tesla-a100", 16),
    **{f"a2-ultragpu-{c}g": ("nvidia-a100-80gb", c) for c in (1, 2, 4, 8)},
    **{f"a3-highgpu-{c}g": ("nvidia-h100-80gb", c) for c in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("nvidia-h100-mega-80gb", 8),
}
# GPUs that N1 machine types take as guest accelerators.
N1_ACCELERATORS = ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p4", "nvidia-tesla-p100")
# Series without GPUs (general purpose, compute and memory optimized).
CPU_SERIES = ("e2", "n1", "n2", "n2d", "n4", "c2", "c2d", "c3", "c3d", "c4", "t2d", "t2a", "m1", "m2", "m3")
MACHINE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z]+(-[0-9]+[a-z]?)?$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
ZONE_RE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")


def describe(machine_type: str, accelerator: dict | None = None) -> dict:
    """{known, gpus, gpu_model, bundled}; known None = not in the offline table."""
    if machine_type in BUNDLED_GPUS:
        model, count = BUNDLED_GPUS[machine_type]
        return {"known": True, "gpus": count, "gpu_model": model, "bundled": True}
    series = machine_type.split("-", 1)[0]
    if series in CPU_SERIES:
        gpus = int(accelerator["count"]) if accelerator and series == "n1" else 0
        model = accelerator["type"] if gpus else None
        return {"known": True, "gpus": gpus, "gpu_model": model, "bundled": False}
    return {"known": None, "gpus": None, "gpu_model": None, "bundled": False}
