"""Validate rendered Kubernetes manifests offline, the way the API server would see them.

Shared by every render test (cluster, serving, monitoring, finetune, tuner). Built-in
kinds are checked against the bundled OpenAPI schemas of each target version with
`strict=True` (a misspelt field fails); CRD kinds, which kubernetes-validate only warns
about, must be listed in KNOWN_CRDS with their apiVersion and are checked for the basic
shape. Anything else fails: an unknown kind is a typo until proven otherwise.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Iterable

import kubernetes_validate
import yaml

# Oldest supported (the seeds' kubeadm 1.29) and the newest schemas bundled here.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())

KNOWN_CRDS: dict[str, set[str]] = {
    "ServiceMonitor": {"monitoring.coreos.com/v1"},
    "PodMonitor": {"monitoring.coreos.com/v1"},
    "PrometheusRule": {"monitoring.coreos.com/v1"},
    "AlertmanagerConfig": {"monitoring.coreos.com/v1alpha1"},
    "ScaledObject": {"keda.sh/v1alpha1"},
    "Installation": {"operator.tigera.io/v1"},
    "APIServer": {"operator.tigera.io/v1"},
    "IPPool": {"crd.projectcalico.org/v1", "projectcalico.org/v3"},
    "HelmChart": {"helm.cattle.io/v1"},
    "HelmChartConfig": {"helm.cattle.io/v1"},
    "InferencePool": {"inference.networking.k8s.io/v1"},
    "HTTPRoute": {"gateway.networking.k8s.io/v1"},
}


def load_documents(paths: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """All non-empty YAML documents in the files (or directories, recursively) given."""
    docs = []
    for path in paths:
        files = sorted(glob.glob(os.path.join(path, "**", "*.y*ml"), recursive=True)) if os.path.isdir(path) else [path]
        for name in files:
            with open(name, encoding="utf-8") as handle:
                for doc in yaml.safe_load_all(handle):
                    if doc:
                        docs.append((name, doc))
    return docs


def validate_object(obj: dict[str, Any], versions: Iterable[str] = K8S_VERSIONS) -> list[str]:
    """Errors for one object (empty list when valid in every version)."""
    kind, api = obj.get("kind"), obj.get("apiVersion")
    name = (obj.get("metadata") or {}).get("name")
    where = f"{kind}/{name}"
    if not kind or not api or not name:
        return [f"{where}: kind, apiVersion and metadata.name are required"]
    if kind in KNOWN_CRDS:
        if api not in KNOWN_CRDS[kind]:
            return [f"{where}: apiVersion {api} is not one of {sorted(KNOWN_CRDS[kind])}"]
        return [] if isinstance(obj.get("spec"), dict) else [f"{where}: spec missing"]
    errors = []
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where} (k8s {version}): {exc.message} at {'/'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{where} (k8s {version}): no schema for {api} {kind} (removed or misspelt apiVersion?)")
    return errors


def validate_paths(paths: Iterable[str], versions: Iterable[str] = K8S_VERSIONS) -> list[str]:
    errors = []
    for name, doc in load_documents(paths):
        errors += [f"{os.path.basename(name)}: {e}" for e in validate_object(doc, versions)]
    return errors
