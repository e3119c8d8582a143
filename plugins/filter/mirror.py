"""Filters for offline operation (docs/offline.md); the logic lives in module_utils/mirror."""
from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.k8s.images import split_registry
from ansible_collections.llmops.platform.plugins.module_utils.mirror import manifest as manifestmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import plan as planmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import urls
from ansible_collections.llmops.platform.plugins.module_utils.mirror.pypi import lock_sha256

# Registries whose images the platform's own components pull without an image variable of
# ours (kubeadm's control plane, Calico, kube-prometheus-stack): redirected to the mirror too.
DEFAULT_REGISTRIES = ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "nvcr.io")


def mirror_url(url: Any, mirror: Any = "") -> str:
    """`url` from the mirror at `mirror` (platform_mirror_url); unchanged when it is empty."""
    try:
        return urls.rewrite(str(url), str(mirror or ""))
    except urls.MirrorUrlError as exc:
        raise AnsibleFilterError(str(exc)) from None


def mirror_registry_url(mirror: Any) -> str:
    """The registry endpoint of the mirror server (its /v2/ API at scheme://host:port)."""
    try:
        base = urls.check_mirror_url(str(mirror or ""))
    except urls.MirrorUrlError as exc:
        raise AnsibleFilterError(str(exc)) from None
    if not base:
        return ""
    scheme = base.split("://", 1)[0]
    return f"{scheme}://{urls.registry_host(base)}"


def mirror_registries(versions: Any, extra: Any = None) -> list[str]:
    """Every registry an image of platform_versions comes from, with the defaults and `extra`."""
    found = {split_registry(str(v))[0] for k, v in (versions or {}).items()
             if k.endswith("_image") and isinstance(v, str)}
    return sorted(found | set(DEFAULT_REGISTRIES) | set(extra or []))


def mirror_upstream(registry: Any) -> str:
    """The upstream endpoint containerd's hosts.toml names as `server` for a registry."""
    registry = str(registry)
    return "https://registry-1.docker.io" if registry == "docker.io" else f"https://{registry}"


def mirror_environment(mirror: Any) -> dict[str, str]:
    """Environment that points pip (scripts/venv.sh) and huggingface_hub at the mirror."""
    try:
        base = urls.check_mirror_url(str(mirror or ""))
    except urls.MirrorUrlError as exc:
        raise AnsibleFilterError(str(exc)) from None
    if not base:
        return {}
    return {"LLMOPS_PIP_FIND_LINKS": urls.pypi_url(base), "HF_ENDPOINT": urls.hf_endpoint(base)}


def mirror_model_sources(models: Any) -> list[str]:
    """Model sources of llm_models (normalized or not), hf: ones with their revision."""
    out = []
    for entry in models or []:
        if entry.get("source_scheme") == "hf":
            out.append(f"hf:{entry['source_ref']}@{entry['revision']}")
        elif str(entry.get("source", "")).startswith("hf:") and entry.get("revision") and "@" not in entry["source"]:
            out.append(f"{entry['source']}@{entry['revision']}")
        else:
            out.append(str(entry.get("source", "")))
    return out


def mirror_lock_hashes(collection_root: Any, venvs: Any) -> dict[str, str]:
    out = {}
    for venv in venvs or []:
        path = os.path.join(str(collection_root), "requirements", f"{venv}.lock")
        if os.path.isfile(path):
            out[str(venv)] = lock_sha256(path)
    return out


def mirror_plan(versions: Any, selection: Any, digests: Any = None, locks: Any = None) -> list[dict[str, Any]]:
    """Every artifact the selection needs (module_utils/mirror/plan.py), as dicts."""
    try:
        return [a.to_dict() for a in planmod.plan(versions or {}, selection or {}, digests or {}, locks or {})]
    except planmod.PlanError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def mirror_missing(expected: Any, manifest: Any, roles: Any = None) -> list[str]:
    """What `expected` (mirror_plan) needs that the mirror's `manifest` (JSON text or dict)
    does not hold; with `roles`, only the artifacts those roles fetch."""
    try:
        if isinstance(manifest, dict):
            doc = manifest
        else:
            text = str(manifest or "").strip()
            doc = manifestmod.load(text) if text.startswith("{") else {}
    except ValueError as exc:
        raise AnsibleFilterError(f"platform_mirror_manifest: {exc}") from None
    wanted = planmod.for_roles(expected or [], roles) if roles is not None else list(expected or [])
    if not doc:
        return [f"{a['name']} ({a.get('source', '')}): the mirror has no manifest" for a in wanted]
    return manifestmod.missing(wanted, doc)


class FilterModule:
    def filters(self):
        return {"mirror_url": mirror_url, "mirror_registry_url": mirror_registry_url,
                "mirror_registries": mirror_registries, "mirror_upstream": mirror_upstream,
                "mirror_environment": mirror_environment, "mirror_lock_hashes": mirror_lock_hashes,
                "mirror_model_sources": mirror_model_sources,
                "mirror_plan": mirror_plan, "mirror_missing": mirror_missing}
