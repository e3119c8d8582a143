"""playbooks/nodes.yml with platform_apply: false (render only, as site.yml runs for a GitOps
export) leaves the hosts alone: the node roles change hosts and render nothing, so they are
skipped, and the play says why. Run in check mode against the cluster render inventory (every
host is this machine over a local connection), so even a broken gate could change nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from cluster_render import INVENTORY, ROOT

NODE_ROLES = ("node_prep", "nvidia_driver", "containerd", "nvidia_container_toolkit")


def _run(tmp_path, extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    extra = {"platform_home": str(tmp_path), "platform_render_dir": str(tmp_path / "rendered"), **extra}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, "playbooks/nodes.yml",
           "--check", "-e", json.dumps(extra)]
    return subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=600, check=False)


def test_render_only_skips_every_node_role(tmp_path):
    out = _run(tmp_path, {"platform_apply": False})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert out.stdout.count("platform_apply is false: the nodes layer only changes hosts") == 3  # cp1, cpu1, gpu1
    # Each node role task is listed and skipped on every host, never run.
    results, task = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("TASK ["):
            task = line
            results[task] = []
        elif task and line.split(":")[0] in ("ok", "changed", "skipping", "fatal", "failed"):
            results[task].append(line.split(":")[0])
    for role in NODE_ROLES:
        tasks = [t for t in results if t.startswith(f"TASK [llmops.platform.{role} :")]
        assert tasks, role
        assert all(set(results[t]) <= {"skipping"} for t in tasks), [(t, results[t]) for t in tasks if set(results[t]) - {"skipping"}]
    # Preflight still checks the inventory.
    assert any(t.startswith("TASK [llmops.platform.preflight :") and "ok" in r for t, r in results.items())
