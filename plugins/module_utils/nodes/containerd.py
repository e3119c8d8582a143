"""Which config.toml schema a containerd binary reads; knows nothing about Ansible.

containerd 1.x reads `version = 2` (CRI under plugins."io.containerd.grpc.v1.cri");
2.x reads `version = 3` (CRI split into io.containerd.cri.v1.runtime / .images). Writing
the wrong one is the classic "SystemdCgroup silently ignored" bug, so the schema is
chosen from the installed binary, never from the pin.
"""
from __future__ import annotations

import re

_VERSION = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)")


class ContainerdVersionError(ValueError):
    pass


def parse_containerd_version(output: str) -> str:
    """'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1' -> '1.6.20'."""
    match = _VERSION.search(output or "")
    if not match:
        raise ContainerdVersionError(f"no containerd version in {output!r}")
    return ".".join(match.groups())


def config_schema_version(version: str) -> int:
    """config.toml `version` for a containerd release: 2 for 1.x, 3 for 2.x and later."""
    major = int(parse_containerd_version(version).split(".", maxsplit=1)[0])
    if major < 1:
        raise ContainerdVersionError(f"containerd {version} is too old (need >= 1.6)")
    return 2 if major == 1 else 3
