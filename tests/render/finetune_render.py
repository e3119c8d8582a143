"""Run playbooks/finetune.yml for real (platform_target kubernetes, platform_apply false) on
the local inventory; the default render is shared by the test modules (once per process).

The serving namespace and the admin clients are seed 002's (tests/render/inventories/k8s_002),
so its render and this one describe one cluster (tests/render/test_network_reachability.py).
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SECRET_URI = "https://mlflow-SENTINEL.example:5000"
ADMIN_CLIENTS = {"namespaces": ["platform-admin"], "cidrs": ["198.51.100.0/28"]}
# The WebUI is off by default; the default render turns it on to test what guards it.
DEFAULT = {"llama_factory_k8s_webui": True, "platform_namespace": "managed", "platform_k8s_admin_clients": ADMIN_CLIENTS}


def render(home: str, extra: dict) -> str:
    vars_file = os.path.join(home, "vars.json")
    os.makedirs(home, exist_ok=True)
    data = {"platform_target": "kubernetes", "platform_apply": False, "llama_factory_k8s_mlflow_uri": SECRET_URI}
    data.update(extra)
    with open(vars_file, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    env = dict(os.environ, LLMOPS_HOME=home, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    result = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "inventories/local", "playbooks/finetune.yml",
                             "-e", f"@{vars_file}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return os.path.join(home, "rendered", "finetune")


@functools.lru_cache(maxsize=1)
def default() -> str:
    """The default render's directory (…/rendered/finetune)."""
    base = tempfile.mkdtemp(prefix="llmops-finetune-render-")
    atexit.register(shutil.rmtree, base, True)
    return render(os.path.join(base, "default"), DEFAULT)
