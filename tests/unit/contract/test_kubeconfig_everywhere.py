"""Every task that talks to a Kubernetes API uses platform_kubeconfig, never the controller's
ambient KUBECONFIG or ~/.kube/config: kubernetes.core modules take `kubeconfig:`, kubectl
commands `--kubeconfig`. A role that forgot it would act on whatever cluster the operator's
shell points at (the cluster layer's freshly fetched admin.conf is not that one)."""
from __future__ import annotations

import glob
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KUBECONFIG = "{{ platform_kubeconfig }}"
# Modules that never contact a cluster.
OFFLINE = {"kubernetes.core.kustomize", "kubernetes.core.helm_template", "kubernetes.core.helm_plugin_info"}


def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _files() -> list[str]:
    files = glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "**", "*.yml"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "roles", "*", "handlers", "*.yml"))
    files += glob.glob(os.path.join(ROOT, "playbooks", "*.yml")) + [os.path.join(ROOT, "site.yml")]
    return sorted(files)


def _all_tasks(path: str):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or []
    if os.path.basename(os.path.dirname(path)) in ("playbooks",) or path.endswith("site.yml"):
        for play in data:
            for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield from _tasks(play.get(key))
    else:
        yield from _tasks(data)


def kubeconfig_violations(task: dict) -> list[str]:
    errors = []
    for module, args in task.items():
        if not isinstance(module, str):
            continue
        if module.startswith("kubernetes.core.") and module not in OFFLINE:
            if not isinstance(args, dict) or args.get("kubeconfig") != KUBECONFIG:
                errors.append(f"{module} without kubeconfig: {KUBECONFIG}")
        if module in ("ansible.builtin.command", "ansible.builtin.shell"):
            text = yaml.safe_dump(args)
            argv = args.get("argv") if isinstance(args, dict) else None
            words = argv or text.split()
            if words and os.path.basename(str(words[0])) == "kubectl" and "--kubeconfig" not in text:
                errors.append("kubectl without --kubeconfig")
    return errors


def test_every_kubernetes_task_passes_platform_kubeconfig():
    checked, problems = 0, []
    for path in _files():
        for task in _all_tasks(path):
            if any(str(m).startswith("kubernetes.core.") for m in task):
                checked += 1
            problems += [f"{os.path.relpath(path, ROOT)}: {task.get('name')}: {e}" for e in kubeconfig_violations(task)]
    assert problems == []
    # The walk really sees the Kubernetes tasks (apply path, cluster layer, monitoring, router).
    assert checked >= 20, checked


def test_the_check_catches_a_task_without_it():
    assert kubeconfig_violations({"name": "x", "kubernetes.core.k8s": {"state": "present", "src": "a.yaml"}})
    assert kubeconfig_violations({"name": "x", "kubernetes.core.k8s_info": {"kind": "Node", "kubeconfig": "~/.kube/config"}})
    assert kubeconfig_violations({"name": "x", "ansible.builtin.command": {"argv": ["kubectl", "get", "nodes"]}})
    assert kubeconfig_violations({"name": "x", "ansible.builtin.command": {"argv": ["kubectl", "--kubeconfig", KUBECONFIG,
                                                                                     "get", "nodes"]}}) == []
    assert kubeconfig_violations({"name": "x", "kubernetes.core.helm": {"kubeconfig": KUBECONFIG, "name": "a"}}) == []
