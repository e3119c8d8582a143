"""Run playbooks/cluster.yml for real (platform_apply: false) against the test inventory.

tests/render/inventories/cluster describes seed 000's three nodes with given facts; every
host is `ansible_connection: local` and nothing but rendering happens. The renders run in
parallel, once per pytest process (cached), each into its own directory.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "tests", "render", "inventories", "cluster")

# name -> (extra vars, extra ansible-playbook args)
RENDERS: dict[str, tuple[dict, list[str]]] = {
    "kubeadm": ({}, []),
    "k3s": ({"cluster_distribution": "k3s"}, []),
    # The previous default, still selectable: 1.29 reads the kubeadm config API v1beta3
    # (the default, 1.36, reads v1beta4).
    "kubeadm_1_29": ({"kubeadm_version": "1.29.15", "kubeadm_package_version": "1.29.15-1.1"}, ["--tags", "kubeadm"]),
    # A role's tag runs alone (facts are tagged always).
    "calico_only": ({}, ["--tags", "calico"]),
}


def _command(name: str, home: str) -> list[str]:
    extra, args = RENDERS[name]
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    extra = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **extra}
    return [ansible_playbook, "-i", INVENTORY, "playbooks/cluster.yml", "-e", json.dumps(extra), *args]


@functools.lru_cache(maxsize=1)
def render_all() -> dict[str, str]:
    """Render every variant; returns name -> render directory (…/rendered/cluster)."""
    base = tempfile.mkdtemp(prefix="llmops-cluster-render-")
    atexit.register(shutil.rmtree, base, True)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    procs = {}
    for name in RENDERS:
        home = os.path.join(base, name)
        os.makedirs(home)
        procs[name] = (home, subprocess.Popen(_command(name, home), cwd=ROOT, env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    result = {}
    for name, (home, proc) in procs.items():
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"render {name} failed (rc {proc.returncode}):\n{out[-4000:]}")
        result[name] = os.path.join(home, "rendered", "cluster")
    return result


def files(render_dir: str) -> list[str]:
    """Paths of every rendered file, relative to the render directory."""
    return sorted(os.path.relpath(os.path.join(d, f), render_dir) for d, _, fs in os.walk(render_dir) for f in fs)


def load_docs(path: str) -> list[dict]:
    """Every non-empty YAML document of a rendered file."""
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]
