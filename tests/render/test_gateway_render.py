"""Gateway on the kubernetes target: playbooks/serving.yml (which lists the gateway role)
rendered for seed 002 (k8s_002), validated against the 1.29 and current
schemas and the platform's policies; API keys must never reach a rendered file.
"""
from __future__ import annotations

import atexit
import copy
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import app_pods
import k8s_policy as policy
import pytest
import serving_render
import yaml
from k8s_validate import load_documents, validate_object, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import app_code

ROOT = serving_render.ROOT
KEY_SENTINEL = "sk-SENTINELgatewayKeyNeverRendered42"
# name -> steps of extra vars, re-rendered into the same platform_home in order.
VARIANTS = {
    "keys": [{"gateway_api_keys": [KEY_SENTINEL, "sk-second-SENTINEL"]},
             # No router: nothing for the gateway to stand in front of, so its objects are pruned.
             {"gateway_api_keys": [KEY_SENTINEL], "llm_router": {"policy": "kube_proxy"}}],
    "secret": [{"gateway_k8s_api_keys_secret": "team-llm-keys", "gateway_k8s_service_type": "LoadBalancer",
                "gateway_max_inflight_per_client": 4}],
}


@functools.lru_cache(maxsize=1)
def render() -> dict[str, str]:
    base = tempfile.mkdtemp(prefix="llmops-gateway-render-")
    atexit.register(shutil.rmtree, base, True)
    playbook = os.path.join(ROOT, "playbooks", "serving.yml")  # it lists the gateway role
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = dict(serving_render._env(), LLMOPS_GATEWAY_API_KEYS="")
    procs = {}
    for name, steps in VARIANTS.items():
        home = os.path.join(base, name)
        os.makedirs(home)
        lines = ["set -e"]
        for index, extra in enumerate(steps):
            extra = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **extra}
            path = os.path.join(home, f"extra-{index}.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(extra, handle)
            inventory = os.path.join(serving_render.INVENTORIES, "k8s_002")
            lines.append(f"'{ansible_playbook}' -i '{inventory}' '{playbook}' -e '@{path}'")
            lines.append(f"cp -r '{home}/rendered' '{home}/rendered-{index}'")
        procs[name] = (home, subprocess.Popen(["bash", "-c", "\n".join(lines)], cwd=ROOT, env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    homes = {}
    for name, (home, proc) in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"render {name} failed (rc {proc.returncode}):\n{out[-4000:]}")
        homes[name] = home
    return homes


def _docs(name: str, step: int = 0) -> list[dict]:
    path = os.path.join(render()[name], f"rendered-{step}", "serving", "gateway")
    return [doc for _, doc in load_documents([path])] if os.path.isdir(path) else []


def _find(docs, kind, name="llm-gateway"):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture(scope="module")
def keys():
    return _docs("keys")


@pytest.fixture(scope="module")
def secret():
    return _docs("secret")


@pytest.mark.parametrize("name", ["keys", "secret"])
def test_gateway_objects_are_valid_in_1_29_and_current(name):
    path = os.path.join(render()[name], "rendered-0", "serving", "gateway")
    assert os.path.isfile(os.path.join(path, "gateway.yaml"))
    assert validate_paths([path]) == []


def test_the_gateway_objects_and_policies(keys):
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in keys)
    assert kinds == [("ConfigMap", "llm-gateway"), ("ConfigMap", "llm-gateway-code"), ("Deployment", "llm-gateway"),
                     ("NetworkPolicy", "llm-gateway-ingress"), ("PodDisruptionBudget", "llm-gateway"),
                     ("Service", "llm-gateway")]
    assert all(d["metadata"]["namespace"] == "managed" for d in keys)
    assert policy.image_problems(keys) == []
    assert policy.resource_problems(keys) == []
    assert policy.selector_problems(keys) == []
    deployment = _find(keys, "Deployment")
    assert policy.security_problems(deployment) == []
    container = policy.pod_spec(deployment)["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # The same pinned image as the model pods, so nodes already have it.
    vllm = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))
    assert container["image"] == vllm["platform_versions"]["vllm_gpu_image"]
    # The router's NetworkPolicy admits the gateway by its component label.
    labels = policy.pod_labels(deployment)
    assert labels["app.kubernetes.io/name"] == "llm-gateway" and labels["app.kubernetes.io/component"] == "gateway"


def test_a_broken_gateway_object_fails_validation_and_policy(keys):
    deployment = copy.deepcopy(_find(keys, "Deployment"))
    policy.pod_spec(deployment)["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert policy.security_problems(deployment)
    policy.pod_spec(deployment)["containers"][0]["ports"][0]["containerPort"] = "http"
    assert validate_object(deployment)


def test_config_points_at_the_router_and_code_ships_the_package_and_page(keys):
    config = json.loads(_find(keys, "ConfigMap")["data"]["gateway.json"])
    assert config["upstream_url"] == "http://llm-router.managed.svc.cluster.local:8080"
    assert config["api_keys_file"] == "/etc/llmops-gateway/keys/api_keys"
    assert "api_keys" not in config
    code = _find(keys, "ConfigMap", "llm-gateway-code")["data"]
    shipped = app_code.code_files("gateway", os.path.join(ROOT, "apps"))
    assert sorted(code) == sorted(app_code.configmap_key(f) for f in shipped)
    assert {"llmops_gateway.server.py", "llmops_common.proxy.py", "chat.index.html"} <= set(code)
    assert code["llmops_gateway.server.py"] == open(os.path.join(ROOT, "apps/gateway/llmops_gateway/server.py")).read()
    paths = {i["path"] for i in app_pods.code_volume_items(_find(keys, "Deployment"))}
    assert {"chat/index.html", "llmops_gateway/server.py", "llmops_common/proxy.py"} <= paths


def test_gateway_code_ships_in_a_configmap_and_runs_from_it(keys, tmp_path):
    """As the pod runs it: the code ConfigMap laid out by the volume's items under the mount
    (/opt/llmops-gateway, here a temporary folder), PYTHONPATH as rendered, the config as
    rendered (paths moved to the temporary folder). Its router is not there: ready says so,
    live and the chat page answer."""
    deployment = _find(keys, "Deployment")
    container = policy.pod_spec(deployment)["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["code"] == "/opt/llmops-gateway"
    assert {"name": "PYTHONPATH", "value": "/opt/llmops-gateway"} in container["env"]
    code = _find(keys, "ConfigMap", "llm-gateway-code")["data"]
    app_pods.unpack(code, app_pods.code_volume_items(deployment), str(tmp_path))
    config = json.loads(_find(keys, "ConfigMap")["data"]["gateway.json"])
    config["chat_page"] = config["chat_page"].replace(mounts["code"], str(tmp_path))
    config["api_keys_file"] = str(tmp_path / "api_keys")
    config["upstream_url"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    (tmp_path / "api_keys").write_text("sk-render-test\n")
    (tmp_path / "gateway.json").write_text(json.dumps(config))
    with app_pods.running("llmops_gateway", str(tmp_path / "gateway.json"), str(tmp_path), str(tmp_path)) as url:
        ready, body = app_pods.get_json(url + "/health")
        live, _ = app_pods.get_json(url + "/health/live")
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            page = resp.read().decode()
    assert (ready, body["status"], live) == (503, "unavailable", 200)
    assert "llmops chat" in page


def test_api_keys_only_by_secret_reference(keys, secret):
    volumes = {v["name"]: v for v in policy.pod_spec(_find(keys, "Deployment"))["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "llm-gateway-api-keys"
    volumes = {v["name"]: v for v in policy.pod_spec(_find(secret, "Deployment"))["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "team-llm-keys"
    assert not [d for d in keys + secret if d["kind"] == "Secret"]
    for name in VARIANTS:
        for folder, _dirs, files in os.walk(render()[name]):
            for file in files:
                with open(os.path.join(folder, file), encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                if file.startswith("extra-"):
                    continue  # our own -e input
                assert serving_render.HF_TOKEN_SENTINEL not in text, os.path.join(folder, file)
                assert KEY_SENTINEL not in text and "sk-second-SENTINEL" not in text, os.path.join(folder, file)


def test_no_keys_no_secret_and_the_service_type(secret):
    assert _find(secret, "Service")["spec"]["type"] == "LoadBalancer"
    config = json.loads(_find(secret, "ConfigMap")["data"]["gateway.json"])
    assert config["max_inflight_per_client"] == 4


def test_kube_proxy_removes_the_gateway_and_prunes_it():
    assert _docs("keys", 1) == []
    prune = serving_render.plan(render()["keys"], 1, "gateway")["prune"]
    assert {(o["kind"], o["name"]) for o in prune} >= {("Deployment", "llm-gateway"), ("Service", "llm-gateway"),
                                                       ("ConfigMap", "llm-gateway-code")}
