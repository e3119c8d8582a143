"""The serving layer's apply path against kmock, an in-memory Kubernetes API.

Run 1 creates every object, run 2 changes nothing; removing a model deletes exactly its
objects, and the run after that changes nothing either. kmock has no controllers, so
rollout waits and the router smoke test are off (they need a real cluster).
compare.yml applies a router per arm next to the serving layer's and benchmarks each arm
through its URL; kmock runs no pods, so the URLs point at fake routers on 127.0.0.1.
"""
from __future__ import annotations

import glob
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
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
import serving_render  # noqa: E402
from fake_openai import FakeOpenAI, serve_in_thread  # noqa: E402
from procs import terminate  # noqa: E402

BIN = os.path.dirname(sys.executable)
# kmock registers a pytest plugin that needs pytest-asyncio, so it may live in a venv of its
# own: LLMOPS_KMOCK_PYTHON names that interpreter (default: this one).
KMOCK_PYTHON = os.environ.get("LLMOPS_KMOCK_PYTHON", sys.executable)


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
        while not kubeconfig.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        # kmock is pinned in the control lock: a missing one is a broken venv, reported as such.
        why = proc.stdout.read() if proc.poll() is not None else "timeout"
        assert kubeconfig.exists(), f"kmock did not start: {why}"
        yield str(kubeconfig)
    finally:
        terminate(proc)


HF_TOKEN = "hf_kmockTokenNeverLogged"
GATEWAY_KEY = "sk-kmockGatewayKeyNeverLogged"
# Port 9 (discard) on loopback: nothing answers there.
DECOY_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: decoy, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
users: [{name: decoy, user: {token: decoy}}]
contexts: [{name: decoy, context: {cluster: decoy, user: decoy}}]
current-context: decoy
"""


def _play(tmp_path, kubeconfig: str, playbook: str = "playbooks/serving.yml", **extra) -> subprocess.CompletedProcess:
    data = {"platform_apply": True, "platform_kubeconfig": kubeconfig, "platform_home": str(tmp_path / "home"),
            "platform_render_dir": str(tmp_path / "home" / "rendered"), "vllm_k8s_wait": False,
            "router_k8s_wait": False, "router_k8s_smoke_test": False, "gateway_k8s_wait": False,
            "gateway_api_keys": [GATEWAY_KEY], **extra}
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(data))
    # The controller's ambient kubeconfig points at a dead server: every task must use
    # platform_kubeconfig (tests/unit/contract/test_kubeconfig_everywhere.py checks it statically).
    decoy = tmp_path / "ambient-kubeconfig"
    decoy.write_text(DECOY_KUBECONFIG)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               HF_TOKEN=HF_TOKEN, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), KUBECONFIG=str(decoy))
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i",
                           os.path.join(ROOT, "tests", "render", "inventories", "k8s_002"),
                           playbook, "-e", "@" + str(path)],
                          cwd=ROOT, env=env, text=True, capture_output=True, timeout=600)


def _run(tmp_path, kubeconfig: str, playbook: str = "playbooks/serving.yml", **extra) -> int:
    out = _play(tmp_path, kubeconfig, playbook, **extra)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    # The Secrets' values go into the cluster only: never into the output or a rendered file.
    rendered = "".join(open(path, encoding="utf-8").read()
                       for path in glob.glob(str(tmp_path / "home" / "rendered" / "**" / "*.*"), recursive=True))
    for secret in (HF_TOKEN, GATEWAY_KEY):
        assert secret not in out.stdout + out.stderr and secret not in rendered
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
    assert _exists(kube, "secret", "llm-gateway-api-keys") and _exists(kube, "deployment", "llm-gateway")
    assert _run(tmp_path, kube, llm_models=serving_render.SEED_002[:2]) > 0
    for kind, name in (("deployment", "mistral-7b"), ("service", "mistral-7b"), ("service", "mistral-7b-replicas"),
                       ("poddisruptionbudget", "mistral-7b")):
        assert not _exists(kube, kind, name), f"{kind}/{name} was not pruned"
    assert _exists(kube, "deployment", "qwen-7b") and _exists(kube, "deployment", "llm-router")
    assert _run(tmp_path, kube, llm_models=serving_render.SEED_002[:2]) == 0


def fake_router(policy: str) -> tuple[FakeOpenAI, str, object]:
    """A fake that answers /health as the router does (with its policy); (fake, url, stop)."""
    fake = FakeOpenAI(ttft=0.005, itl=0.001, models=[m["name"] for m in serving_render.SEED_002])
    fake.health_body = {"status": "ok", "policy": policy,
                        "models": {m["name"]: {"replicas": 2, "healthy": 2} for m in serving_render.SEED_002}}
    port, stop = serve_in_thread(fake)
    return fake, f"http://127.0.0.1:{port}", stop


def test_compare_applies_a_router_per_arm_and_benchmarks_each(tmp_path, kube):
    assert _run(tmp_path, kube) > 0  # the serving layer, with its own llm-router
    routers = {"baseline": fake_router("round_robin"), "managed": fake_router("queue_aware")}
    workload = {"compare_repeats": 2, "compare_num_requests": 6, "compare_concurrency": 2,
                "compare_warmup_requests": 0, "compare_scenario": "", "compare_prompt_tokens": 8,
                "compare_max_tokens": 4, "compare_k8s_url_timeout_s": 10,
                "platform_reports_dir": str(tmp_path / "reports")}
    try:
        urls = {arm: url for arm, (_fake, url, _stop) in routers.items()}
        assert _run(tmp_path, kube, "playbooks/compare.yml", compare_k8s_router_urls=urls, **workload) > 0
        for name in ("llm-router", "llm-router-baseline", "llm-router-managed"):
            assert _exists(kube, "deployment", name) and _exists(kube, "service", name), name
        # Each arm's workload went through its own URL: 2 repeats x 3 models x 6 requests.
        for fake, _url, _stop in routers.values():
            models = [body["model"] for body in fake.bodies]
            assert sorted(set(models)) == sorted(m["name"] for m in serving_render.SEED_002)
            assert len(models) == 2 * 3 * 6
        (comparison,) = glob.glob(str(tmp_path / "reports" / "compare" / "*" / "comparison.json"))
        assert "kubernetes, namespace managed" in open(comparison, encoding="utf-8").read()
        # Swapped URLs: the apply changes nothing, then the policy check stops the run.
        swapped = {"baseline": urls["managed"], "managed": urls["baseline"]}
        out = _play(tmp_path, kube, "playbooks/compare.yml", compare_k8s_router_urls=swapped, **workload)
        assert out.returncode != 0
        assert "should reach svc/llm-router-baseline (policy round_robin)" in out.stdout, out.stdout[-3000:]
        assert re.search(r"localhost\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", out.stdout), out.stdout[-3000:]
    finally:
        for _fake, _url, stop in routers.values():
            stop()
