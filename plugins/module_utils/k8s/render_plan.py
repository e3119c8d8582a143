"""The apply plan of a rendered manifest tree: which objects exist now, which to delete.

A role renders its manifests into a directory that always holds exactly the desired state
(files of removed models are deleted). The plan lists every object in that tree; the
objects of the last applied plan that are missing from the new one are pruned. Working
from plans instead of listing the cluster keeps pruning explicit, reviewable in GitOps
exports, and testable without an API server. No Ansible imports.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Iterable

import yaml

ObjectRef = dict[str, str]


def _key(ref: ObjectRef) -> tuple[str, str, str, str]:
    # The group matters (two kinds may share a name), the version does not.
    group = ref["apiVersion"].rpartition("/")[0]
    return (group, ref["kind"], ref.get("namespace", ""), ref["name"])


def manifest_files(root: str) -> list[str]:
    return sorted(glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True))


def objects_in(files: Iterable[str], default_namespace: str = "") -> list[ObjectRef]:
    """One reference per Kubernetes object in the files, in file order."""
    refs: list[ObjectRef] = []
    for name in files:
        with open(name, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if not doc:
                    continue
                meta = doc.get("metadata") or {}
                ref = {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "name": meta["name"]}
                if doc["kind"] != "Namespace":
                    ref["namespace"] = meta.get("namespace") or default_namespace
                ref["file"] = os.path.basename(name)
                refs.append(ref)
    return refs


# Never deleted by a prune: a namespace may hold other things, a claim holds downloaded weights.
NEVER_PRUNED = ("Namespace", "PersistentVolumeClaim")


def to_prune(previous: list[ObjectRef], current: list[ObjectRef]) -> list[ObjectRef]:
    """Objects of the previous plan that the current one no longer has (see NEVER_PRUNED)."""
    keep = {_key(ref) for ref in current}
    return [ref for ref in previous if _key(ref) not in keep and ref["kind"] not in NEVER_PRUNED]


def load_plan(path: str) -> list[ObjectRef] | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["objects"]


def dump_plan(objects: list[ObjectRef]) -> str:
    return json.dumps({"objects": objects}, indent=2, sort_keys=True) + "\n"


def build(render_dir: str, plan_file: str, applied_file: str, default_namespace: str = "") -> dict[str, Any]:
    """Plan for render_dir; prune is relative to the last applied plan, else the last render."""
    current = objects_in(manifest_files(render_dir), default_namespace)
    reference = load_plan(applied_file)
    if reference is None:
        reference = load_plan(plan_file) or []
    return {"objects": current, "prune": to_prune(reference, current)}
