"""Image references the platform renders: a registry override and optional digests.

`platform_image_registry` (empty: upstream) replaces the registry host of every platform
image, keeping its path (`docker.io/vllm/vllm-openai:v0.32.0` with `mirror.example.com/llm`
becomes `mirror.example.com/llm/vllm/vllm-openai:v0.32.0`): a mirror that copies the upstream
paths, as `crane copy`/`skopeo sync` do. `platform_image_digests` maps an image (its
platform_versions key, e.g. `vllm_gpu_image`) to `sha256:<64 hex>`; that image then renders as
`repo:tag@sha256:...`: the runtime pulls by the digest (the tag only tells readers the version).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")


class ImageError(ValueError):
    pass


def split_registry(ref: str) -> tuple[str, str]:
    """(registry host, the rest) by the distribution rule: the first component is a host if it
    has a dot or a port, or is localhost; otherwise the image is Docker Hub's."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", ref if sep else f"library/{ref}"


def image_ref(ref: str, registry: str = "", digest: str = "") -> str:
    """`ref` from `registry` (empty: its own), pinned to `digest` (empty: by its tag)."""
    ref = str(ref)
    if "@" in ref:
        raise ImageError(f"{ref}: already pinned by digest; set platform_image_digests instead")
    if registry:
        registry = str(registry).rstrip("/")
        if not REGISTRY.match(registry):
            raise ImageError(f"platform_image_registry {registry!r} is not a registry host[:port][/path]")
        ref = f"{registry}/{split_registry(ref)[1]}"
    if digest:
        if not DIGEST.match(str(digest)):
            raise ImageError(f"{ref}: digest {digest!r} is not sha256:<64 lowercase hex>")
        ref = f"{ref}@{digest}"
    return ref


def platform_images(versions: Mapping[str, Any], registry: str = "",
                    digests: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """Every `*_image` entry of platform_versions, as the platform renders it."""
    digests = dict(digests or {})
    images = {key: value for key, value in versions.items() if key.endswith("_image") and isinstance(value, str)}
    unknown = sorted(set(digests) - set(images))
    if unknown:
        raise ImageError(f"platform_image_digests: no image {', '.join(unknown)} in platform_versions "
                         f"(one of {', '.join(sorted(images))})")
    return {key: image_ref(value, registry, digests.get(key, "")) for key, value in images.items()}
