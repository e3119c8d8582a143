"""The serving layer's apply path against kmock, an in-memory Kubernetes API.

Run 1 creates every object, run 2 changes nothing; removing a model deletes exactly its
objects, and the run after that changes nothing either. kmock has no controllers, so
rollout waits and the router smoke test are off (they need a real cluster).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "render"))
import serving_render  # noqa: E402

BIN = os.path.dirname(sys.executable)
# kmock registers a pytest plugin that needs pytest-asyncio, so it may live in a venv of its
# own: LLMOPS_KMOCK_PYTHON names that interpreter (default: this one).
KMOCK_PYTHON = os.environ.get("LLMOPS_KMOCK_PYTHON", sys.executable)


def _have_kmock() -> bool:
    return subprocess.run([KMOCK_PYTHON, "-c", "import kmock"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _have_kmock(), reason="kmock is not installed (pip install kmock==0.8)")


def _changed(output: str) -> int:
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert match, output[-3000:]
    return int(match.group(1))


@pytest.fixture()
def kube(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen([KMOCK_PYTHON, os.path.join(ROOT, "tests", "integration", "kmock_api.py"), "0",
                             str(kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kubeconfig.exists(), "kmock did not start"
        yield str(kubeconfig)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run(tmp_path, kubeconfig: str, **extra) -> int:
    data = {"platform_apply": True, "platform_kubeconfig": kubeconfig, "platform_home": str(tmp_path / "home"),
            "platform_render_dir": str(tmp_path / "home" / "rendered"), "vllm_k8s_wait": False,
            "router_k8s_wait": False, "router_k8s_smoke_test": False, **extra}
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(data))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               HF_TOKEN="hf_kmockToken", PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    out = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i",
                          os.path.join(ROOT, "tests", "render", "inventories", "k8s_002"),
                          "playbooks/serving.yml", "-e", "@" + str(path)],
                         cwd=ROOT, env=env, text=True, capture_output=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return _changed(out.stdout)


PATHS = {"deployment": "apis/apps/v1/namespaces/managed/deployments", "secret": "api/v1/namespaces/managed/secrets",
         "service": "api/v1/namespaces/managed/services",
         "poddisruptionbudget": "apis/policy/v1/namespaces/managed/poddisruptionbudgets"}


def _exists(kubeconfig: str, kind: str, name: str) -> bool:
    """GET the object (kubectl's core-group discovery does not work against kmock)."""
    server = re.search(r'server: "([^"]+)"', open(kubeconfig, encoding="utf-8").read()).group(1)
    try:
        with urllib.request.urlopen(f"{server}/{PATHS[kind]}/{name}", timeout=30) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def test_apply_is_idempotent_and_prunes_removed_models(tmp_path, kube):
    assert _run(tmp_path, kube) > 0
    assert _run(tmp_path, kube) == 0
    assert _exists(kube, "deployment", "mistral-7b") and _exists(kube, "secret", "llm-hf-token")
    assert _run(tmp_path, kube, llm_models=serving_render.SEED_002[:2]) > 0
    for kind, name in (("deployment", "mistral-7b"), ("service", "mistral-7b"), ("service", "mistral-7b-replicas"),
                       ("poddisruptionbudget", "mistral-7b")):
        assert not _exists(kube, kind, name), f"{kind}/{name} was not pruned"
    assert _exists(kube, "deployment", "qwen-7b") and _exists(kube, "deployment", "llm-router")
    assert _run(tmp_path, kube, llm_models=serving_render.SEED_002[:2]) == 0
