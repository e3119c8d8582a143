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


def plan_paths(plans_dir: str, name: str) -> dict[str, str]:
    """The three files of one plan: <name>.json, <name>.applied.json, <name>.prune.json."""
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"plan name {name!r}: use a plain file name such as vllm or compare-baseline")
    base = os.path.join(plans_dir, name)
    return {"plan": base + ".json", "applied": base + ".applied.json", "prune": base + ".prune.json"}


def missing_files(render_dir: str, files: Iterable[str]) -> list[str]:
    """Listed file names that are not files in render_dir (a role listing what it did not render)."""
    return [name for name in files if not os.path.isfile(os.path.join(render_dir, name))]


def stale_files(render_dir: str, keep: Iterable[str]) -> list[str]:
    """Manifests directly under render_dir that the role no longer renders (paths, sorted)."""
    wanted = set(keep)
    return [path for path in sorted(glob.glob(os.path.join(render_dir, "*.yaml")))
            if os.path.basename(path) not in wanted]


def apply_order(objects: list[ObjectRef], files: Iterable[str]) -> dict[str, list[str]]:
    """`files` in the order to apply them, as `namespaces` (the files holding a Namespace:
    everything else lives in one, so they go first) and `files` (the rest, as given). A file
    holding no object is left out (there is nothing to apply)."""
    files = [name for name in dict.fromkeys(files) if any(ref["file"] == name for ref in objects)]
    holding = {ref["file"] for ref in objects if ref["kind"] == "Namespace"}
    return {"namespaces": [name for name in files if name in holding],
            "files": [name for name in files if name not in holding]}


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


def build(render_dir: str, plan_file: str, applied_file: str, default_namespace: str = "",
          exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Plan for render_dir (without the paths in `exclude`); prune is relative to the last
    applied plan, else the last render."""
    skip = set(exclude)
    current = objects_in([f for f in manifest_files(render_dir) if f not in skip], default_namespace)
    reference = load_plan(applied_file)
    if reference is None:
        reference = load_plan(plan_file) or []
    return {"objects": current, "prune": to_prune(reference, current)}
