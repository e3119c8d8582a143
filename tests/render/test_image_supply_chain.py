"""A mirror registry and image digests for every image the platform renders.

platform_image_registry and platform_image_digests (versions.yml's supply-chain block) are
set for every `*_image` of platform_versions, and the layers that render images run for real:
serving and monitoring on GPUs with the Gateway API Inference Extension and KVCached's image,
serving on a CPU-only cluster, fine-tuning, and the cluster layer's device plugin. Every
rendered container must pull the mirror's copy by digest, and the policy scanner's digest check
(skipped for the default render, where digests are optional) must pass on it.
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import finetune_render
import policy_scan
import pytest
import serving_render
import yaml
from k8s_validate import load_documents

from ansible_collections.llmops.platform.plugins.module_utils.k8s import images

ROOT = serving_render.ROOT
REGISTRY = "mirror.example.com:5000/upstream"
with open(os.path.join(ROOT, "roles", "platform_defaults", "defaults", "main", "versions.yml"), encoding="utf-8") as _f:
    VERSIONS = yaml.safe_load(_f)["platform_versions"]
IMAGE_KEYS = sorted(k for k in VERSIONS if k.endswith("_image"))
DIGESTS = {key: "sha256:" + hashlib.sha256(key.encode()).hexdigest() for key in IMAGE_KEYS}
SUPPLY = {"platform_image_registry": REGISTRY, "platform_image_digests": DIGESTS}
EXPECTED = images.platform_images(VERSIONS, REGISTRY, DIGESTS)
# The cluster layer's node images (the CRI sandbox) are kubeadm's and K3s's to configure.
NOT_RENDERED_IN_PODS = {"containerd_sandbox_image"}

KVCACHED_IMAGE = {"enabled": True, "install": "image", "models": {"mistral-7b": {"enabled": False}}}
CPU = {"vllm_device": "cpu", "llm_models": [serving_render.CPU_MODEL]}
# name -> (inventory, extra vars, playbooks)
SERVING = {
    "gpu": ("k8s_002", {"llm_router": serving_render.GIE_ROUTER, "vllm_kvcached": KVCACHED_IMAGE},
            serving_render.PLAYBOOKS),
    "cpu": ("k8s_000", CPU, ["playbooks/serving.yml"]),
}


def _command(inventory: str, playbook: str, extra: dict, home: str, *args: str) -> str:
    extra = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **SUPPLY, **extra}
    path = os.path.join(home, "extra.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(extra, handle)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, playbook,
           "-e", "@" + path, *args]
    return " ".join(f"'{c}'" for c in cmd)


@functools.lru_cache(maxsize=1)
def render() -> str:
    """Every layer rendered with the mirror and the digests, side by side under one directory."""
    base = tempfile.mkdtemp(prefix="llmops-supply-chain-")
    atexit.register(shutil.rmtree, base, True)
    scripts = {}
    for name, (inventory, extra, playbooks) in SERVING.items():
        home = os.path.join(base, name)
        os.makedirs(home)
        inventory = os.path.join(serving_render.INVENTORIES, inventory)
        # The playbooks one after the other into the same render directory.
        scripts[name] = "set -e\n" + "\n".join(_command(inventory, pb, extra, home) for pb in playbooks)
    home = os.path.join(base, "cluster")
    os.makedirs(home)
    scripts["cluster"] = _command(os.path.join(serving_render.INVENTORIES, "cluster"), "playbooks/cluster.yml",
                                  {}, home, "--tags", "nvidia_device_plugin")
    procs = {name: subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=serving_render._env(), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name, script in scripts.items()}
    finetune_render.render(os.path.join(base, "finetune"), {**finetune_render.DEFAULT, **SUPPLY})
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"render {name} failed:\n{out[-4000:]}"
    return base


def _containers(directory: str):
    for path, doc in load_documents([directory]):
        kind = doc.get("kind")
        if kind not in ("Deployment", "DaemonSet", "StatefulSet", "Job", "Pod"):
            continue
        spec = doc["spec"] if kind == "Pod" else doc["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{kind}/{doc['metadata']['name']}/{container['name']} ({os.path.relpath(path, directory)})", container


def test_a_digest_must_be_sha256_and_name_an_image():
    with pytest.raises(images.ImageError, match="64 lowercase hex"):
        images.platform_images(VERSIONS, "", {"vllm_gpu_image": "sha256:abc"})
    with pytest.raises(images.ImageError, match="no image vllm_gpu"):
        images.platform_images(VERSIONS, "", {"vllm_gpu": DIGESTS["vllm_gpu_image"]})
    with pytest.raises(images.ImageError, match="not a registry"):
        images.platform_images(VERSIONS, "https://mirror", {})
    # Empty keeps upstream: the default render's images are platform_versions' own.
    assert images.platform_images(VERSIONS, "", {}) == {k: VERSIONS[k] for k in IMAGE_KEYS}


def test_every_rendered_image_comes_from_the_mirror_by_digest():
    seen = {}
    for where, container in _containers(render()):
        image = container["image"]
        assert image in EXPECTED.values(), f"{where}: {image} is not a platform image from {REGISTRY} by digest"
        seen.setdefault(image, where)
    keys = {key for key, ref in EXPECTED.items() if ref in seen}
    # Every image of platform_versions that a pod runs was rendered here.
    assert set(IMAGE_KEYS) - NOT_RENDERED_IN_PODS - keys == set(), sorted(set(IMAGE_KEYS) - keys)
    ref = EXPECTED["vllm_gpu_image"]
    assert ref == (f"{REGISTRY}/vllm/vllm-openai:{VERSIONS['vllm_gpu_image'].rsplit(':', 1)[1]}"
                   f"@{DIGESTS['vllm_gpu_image']}")


def test_the_policy_scanners_digest_check_passes_with_digests():
    code, report, _ = policy_scan.scan(render(), "--framework", "kubernetes", "--skip-download",
                                       "--check", "CKV_K8S_43")
    failed = sorted({f"{f['resource']}: {f['check_id']}" for f in report["results"]["failed_checks"]})
    assert failed == []
    assert code == 0
    assert len(report["results"]["passed_checks"]) >= 10
