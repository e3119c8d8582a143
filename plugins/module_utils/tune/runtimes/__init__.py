"""Where a trial's server runs. The trial loop only sees the `Runtime` interface."""
from __future__ import annotations

from typing import Any

from .base import Deployment, Runtime, TrialFailure  # noqa: F401 (re-export)


def make_runtime(kind: str, **options: Any) -> Runtime:
    # Imported lazily: the docker SDK and kubernetes client are only needed when used.
    if kind == "local":
        from .local import LocalRuntime
        return LocalRuntime(**options)
    if kind == "docker":
        from .docker import DockerRuntime
        return DockerRuntime(**options)
    if kind == "kubernetes":
        from .kubernetes import KubernetesRuntime
        return KubernetesRuntime(**options)
    raise ValueError(f"runtime {kind!r}: use local, docker or kubernetes")
