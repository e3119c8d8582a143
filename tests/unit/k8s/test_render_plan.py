"""The apply plan: which objects a rendered tree holds and which to prune."""
from __future__ import annotations

import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.k8s import render_plan

DEPLOY = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: ns}}\nspec: {{}}\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{}}\n"
NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"


def _write(root, name, text):
    with open(os.path.join(root, name), "w", encoding="utf-8") as handle:
        handle.write(text)


def test_objects_get_default_namespace_and_file(tmp_path):
    _write(tmp_path, "00-ns.yaml", NS)
    _write(tmp_path, "model-a.yaml", DEPLOY.format(name="a") + "---\n" + SVC.format(name="a"))
    objs = render_plan.objects_in(render_plan.manifest_files(str(tmp_path)), "ns")
    assert [(o["kind"], o["name"], o.get("namespace"), o["file"]) for o in objs] == [
        ("Namespace", "ns", None, "00-ns.yaml"), ("Deployment", "a", "ns", "model-a.yaml"),
        ("Service", "a", "ns", "model-a.yaml")]


def test_prune_is_previous_minus_current_by_group_kind_and_name_never_namespaces():
    prev = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "namespace": "ns"},
            {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "name": "a", "namespace": "ns"},
            {"apiVersion": "v1", "kind": "Namespace", "name": "old"},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "llm-model-cache", "namespace": "ns"}]
    cur = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "namespace": "ns"},
           {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "a", "namespace": "ns"}]
    assert render_plan.to_prune(prev, cur) == []
    assert render_plan.to_prune(cur, prev[:1]) == [cur[1]]


def test_build_prefers_the_applied_plan_over_the_last_render(tmp_path):
    render = tmp_path / "r"
    render.mkdir()
    _write(render, "model-a.yaml", DEPLOY.format(name="a"))
    plan, applied = str(tmp_path / "plan.json"), str(tmp_path / "applied.json")
    first = render_plan.build(str(render), plan, applied, "ns")
    assert first["prune"] == []
    with open(applied, "w", encoding="utf-8") as handle:
        handle.write(render_plan.dump_plan(first["objects"]))
    _write(render, "model-b.yaml", DEPLOY.format(name="b"))
    with open(plan, "w", encoding="utf-8") as handle:  # a render with b only, never applied
        handle.write(render_plan.dump_plan(render_plan.build(str(render), plan, applied, "ns")["objects"]))
    os.remove(render / "model-a.yaml")
    os.remove(render / "model-b.yaml")
    assert [o["name"] for o in render_plan.build(str(render), plan, applied, "ns")["prune"]] == ["a"]
    os.remove(applied)
    assert [o["name"] for o in render_plan.build(str(render), plan, applied, "ns")["prune"]] == ["a", "b"]


def test_plan_paths_are_three_files_of_one_name():
    assert render_plan.plan_paths("/r/plans", "compare-baseline") == {
        "plan": "/r/plans/compare-baseline.json", "applied": "/r/plans/compare-baseline.applied.json",
        "prune": "/r/plans/compare-baseline.prune.json"}
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain file name"):
            render_plan.plan_paths("/r/plans", bad)


def test_stale_and_missing_files(tmp_path):
    for name in ("00-ns.yaml", "model-a.yaml", "model-gone.yaml", "notes.txt"):
        _write(tmp_path, name, NS)
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "deep.yaml", NS)
    keep = ["00-ns.yaml", "model-a.yaml", "model-new.yaml"]
    # Only *.yaml directly in the directory: other files and subdirectories are not the role's render.
    assert render_plan.stale_files(str(tmp_path), keep) == [str(tmp_path / "model-gone.yaml")]
    assert render_plan.missing_files(str(tmp_path), keep) == ["model-new.yaml"]
    assert render_plan.stale_files(str(tmp_path), []) == [str(tmp_path / n) for n in
                                                          ("00-ns.yaml", "model-a.yaml", "model-gone.yaml")]


def test_apply_order_puts_namespace_files_first_and_skips_empty_files(tmp_path):
    _write(tmp_path, "namespace.yaml", NS)
    _write(tmp_path, "pvc.yaml", SVC.format(name="p"))
    _write(tmp_path, "job.yaml", DEPLOY.format(name="j"))
    _write(tmp_path, "empty.yaml", "---\n")
    objs = render_plan.objects_in(render_plan.manifest_files(str(tmp_path)), "ns")
    assert render_plan.apply_order(objs, ["pvc.yaml", "job.yaml", "empty.yaml", "namespace.yaml", "pvc.yaml"]) == {
        "namespaces": ["namespace.yaml"], "files": ["pvc.yaml", "job.yaml"]}
    assert render_plan.apply_order(objs, []) == {"namespaces": [], "files": []}


def test_build_leaves_out_excluded_files(tmp_path):
    _write(tmp_path, "model-a.yaml", DEPLOY.format(name="a"))
    _write(tmp_path, "model-b.yaml", DEPLOY.format(name="b"))
    plan = render_plan.build(str(tmp_path), str(tmp_path / "p.json"), str(tmp_path / "a.json"), "ns",
                             exclude=[str(tmp_path / "model-b.yaml")])
    assert [o["name"] for o in plan["objects"]] == ["a"]
