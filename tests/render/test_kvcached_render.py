"""KVCached in the vllm role's Kubernetes render (seed 002), and its refusal on CPU and locally.

The renders come from serving_render.py (variant `kvcached`: step 0 installs the pinned
kvcached with pip in an initContainer, step 1 uses a prebuilt image); the default seed002
render must carry nothing of it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import k8s_policy as policy
import pytest
import serving_render
import yaml
from k8s_validate import K8S_VERSIONS, load_documents, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import kvcached

ROOT = serving_render.ROOT
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
MODELS = ("llama-8b", "qwen-7b", "mistral-7b")


def _deployments(name: str, step: int) -> dict[str, dict]:
    home = serving_render.render_all()[name]
    docs = [d for _, d in load_documents([os.path.join(home, f"rendered-{step}", "serving", "vllm")])]
    return {d["metadata"]["name"]: d for d in policy.by_kind(docs, "Deployment")}


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _init(spec: dict, name: str) -> dict | None:
    return next((c for c in spec.get("initContainers", []) if c["name"] == name), None)


@pytest.mark.parametrize("step", [0, 1])
def test_kvcached_manifests_validate_in_1_29_and_current(step):
    home = serving_render.render_all()["kvcached"]
    assert K8S_VERSIONS[0] == "1.29" and len(K8S_VERSIONS) == 2
    assert validate_paths([os.path.join(home, f"rendered-{step}", "serving")]) == []
    docs = [d for _, d in load_documents([os.path.join(home, f"rendered-{step}", "serving")])]
    assert policy.image_problems(docs) == [] and policy.resource_problems(docs) == []
    for deployment in policy.by_kind(docs, "Deployment"):
        assert policy.security_problems(deployment) == []


def test_pip_install_puts_the_pinned_kvcached_where_the_server_loads_it():
    deployments = _deployments("kvcached", 0)
    for model in ("llama-8b", "qwen-7b"):
        spec = policy.pod_spec(deployments[model])
        main = spec["containers"][0]
        env = _env(main)
        assert env["ENABLE_KVCACHED"] == "true" and env["KVCACHED_AUTOPATCH"] == "1"
        assert env["PYTHONUSERBASE"] == "/opt/kvcached"
        # kvcached 0.1.6 refuses vLLM >= 0.31: these pods run the pinned image it supports.
        assert main["image"] == VERSIONS["vllm_kvcached_image"] != VERSIONS["vllm_gpu_image"]
        annotations = deployments[model]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["llmops.platform/kvcached"] == VERSIONS["kvcached"]
        install = _init(spec, "kvcached-install")
        # Installed before the (long) weights download, from the same image (its CUDA torch).
        assert [c["name"] for c in spec["initContainers"]] == ["kvcached-install", "model-download"]
        assert install["image"] == main["image"] == _init(spec, "model-download")["image"]
        install_env = _env(install)
        assert install_env["KVCACHED_VERSION"] == VERSIONS["kvcached"] == "0.1.6"
        assert install_env["KVCACHED_SHA256"] == VERSIONS["kvcached_sha256"]
        assert install_env["PYTHONUSERBASE"] == env["PYTHONUSERBASE"]
        script = install["args"][0]
        assert install["command"] == ["sh", "-ec"]
        assert "--require-hashes" in script and "--no-build-isolation" in script and "--user" in script
        assert "printf 'kvcached==%s --hash=sha256:%s" in script and "kvcached_autopatch.pth" in script
        # kvcached without its dependencies; those the image lacks only from the hashed lock.
        installs = [line for line in script.splitlines() if "pip install" in line]
        assert len(installs) == 2 and all("--no-deps --require-hashes" in line for line in installs), installs
        assert kvcached.dependency_lock() in script
        assert "/usr/local/cuda/lib64/stubs" in script
        subprocess.run(["sh", "-n", "-c", script], check=True)
        mounts = {m["name"]: m for m in main["volumeMounts"]}
        assert mounts["kvcached"] == {"name": "kvcached", "mountPath": "/opt/kvcached", "readOnly": True}
        assert {"name": "kvcached", "mountPath": "/opt/kvcached"} in install["volumeMounts"]
        assert {"name": "kvcached", "emptyDir": {"sizeLimit": "1Gi"}} in spec["volumes"]
        # kvcached keeps gpu_memory_utilization as its upper bound: the seed's flags stay.
        args = main["args"]
        assert args[args.index("--gpu-memory-utilization") + 1] == "0.9"
    assert _env(policy.pod_spec(deployments["qwen-7b"])["containers"][0])["KVCACHED_LOG_LEVEL"] == "DEBUG"
    assert "KVCACHED_LOG_LEVEL" not in _env(policy.pod_spec(deployments["llama-8b"])["containers"][0])


def test_a_model_turned_off_and_the_default_render_carry_nothing_of_kvcached():
    off = [_deployments("kvcached", 0)["mistral-7b"]] + list(_deployments("seed002", 0).values())
    for deployment in off:
        if deployment["metadata"]["name"] == "llm-router":
            continue
        text = json.dumps(deployment)
        assert "kvcached" not in text.lower() and "PYTHONUSERBASE" not in text, deployment["metadata"]["name"]
        assert policy.pod_spec(deployment)["containers"][0]["image"] == VERSIONS["vllm_gpu_image"]


def test_prebuilt_image_needs_no_install_step():
    for model, deployment in _deployments("kvcached", 1).items():
        spec = policy.pod_spec(deployment)
        main = spec["containers"][0]
        env = _env(main)
        assert main["image"] == serving_render.KVCACHED_IMAGE_REF, model
        assert env["ENABLE_KVCACHED"] == "true" and "PYTHONUSERBASE" not in env
        assert _init(spec, "kvcached-install") is None and _init(spec, "model-download")
        assert not [v for v in spec["volumes"] if v["name"] == "kvcached"]


def _run(home: str, extra: dict, inventory: str, *args: str) -> subprocess.Popen:
    extra = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **extra}
    os.makedirs(home)
    path = os.path.join(home, "extra.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(extra, handle)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
           os.path.join(serving_render.INVENTORIES, inventory), "playbooks/serving.yml", "-e", "@" + path, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=serving_render._env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_cpu_and_the_local_target_are_refused_naming_the_field(tmp_path):
    runs = {
        # A CPU cluster: preflight stops it before anything is rendered.
        "cpu": _run(str(tmp_path / "cpu"), {"vllm_device": "cpu", "llm_models": [serving_render.CPU_MODEL],
                                            "vllm_kvcached": {"enabled": True}}, "k8s_000"),
        # The local target with GPUs, one model switched on: the vllm role's own check.
        "local": _run(str(tmp_path / "local"),
                      {"platform_target": "local", "vllm_kvcached": {"models": {"llama-3b": {"enabled": True}}}},
                      "k8s_000", "--skip-tags", "preflight"),
    }
    out = {name: proc.communicate(timeout=300)[0] for name, proc in runs.items()}
    assert runs["cpu"].returncode != 0, out["cpu"][-2000:]
    assert "vllm_kvcached.enabled: kvcached is GPU-only" in out["cpu"] and "vllm_device: gpu" in out["cpu"]
    assert "Check that KVCached is only asked for where it runs" in out["cpu"]
    assert "Render the namespace" not in out["cpu"]
    assert runs["local"].returncode != 0, out["local"][-2000:]
    assert "vllm_kvcached.models.llama-3b.enabled: kvcached is not supported on the local target" in out["local"]
    assert "Resolve KVCached per model" in out["local"] and "Create the serving venv" not in out["local"]
