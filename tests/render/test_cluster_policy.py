"""Policies the rendered cluster must keep, on the seed-000 inventory (control plane, CPU
worker, GPU worker found by PCI ID): GPU nodes labelled and tainted (and only they), the
device plugin only there and tolerating exactly those taints, one pod CIDR everywhere,
systemd cgroups on containerd, every version pinned, no secret in a rendered file, and a
distribution switch that changes only the distribution's own files."""
from __future__ import annotations

import filecmp
import ipaddress
import os
import re

import pytest
import yaml
from cluster_render import ROOT, files, render_all

DEFAULTS = os.path.join(ROOT, "roles", "platform_defaults", "defaults", "main")
GPU_HOST = "gpu1"


def _load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def _defaults(name: str) -> dict:
    return _load(os.path.join(DEFAULTS, name))[0]


@pytest.fixture(scope="module")
def renders() -> dict[str, str]:
    return render_all()


def _by_kind(render_dir: str, sub: str, kind: str) -> list[dict]:
    out = []
    for name in os.listdir(os.path.join(render_dir, sub)):
        out += [d for d in _load(os.path.join(render_dir, sub, name)) if d.get("kind") == kind]
    return out


def _kubeadm(render_dir: str, host: str) -> dict[str, dict]:
    name = "init" if host == "cp1" else "join"
    return {d["kind"]: d for d in _load(os.path.join(render_dir, "kubeadm", f"{host}-{name}.yaml"))}


# ---- policy functions: return violations, so the tests can also feed them broken input ----

def tolerated(taint: dict, tolerations: list[dict]) -> bool:
    for tol in tolerations:
        key_ok = tol.get("key") == taint["key"] or (tol.get("operator") == "Exists" and "key" not in tol)
        value_ok = tol.get("operator") == "Exists" or tol.get("value") == taint.get("value")
        effect_ok = not tol.get("effect") or tol["effect"] == taint["effect"]
        if key_ok and value_ok and effect_ok:
            return True
    return False


def device_plugin_violations(daemonset: dict, gpu_labels: dict, gpu_taints: list[dict]) -> list[str]:
    spec = daemonset["spec"]["template"]["spec"]
    errors = []
    selector = spec.get("nodeSelector") or {}
    if not selector or any(gpu_labels.get(k) != v for k, v in selector.items()):
        errors.append(f"nodeSelector {selector} does not select GPU nodes only (labels {gpu_labels})")
    for taint in gpu_taints:
        if not tolerated(taint, spec.get("tolerations") or []):
            errors.append(f"GPU taint {taint} not tolerated")
    for tol in spec.get("tolerations") or []:
        if not any(tolerated(t, [tol]) for t in gpu_taints):
            errors.append(f"toleration {tol} matches no GPU taint")
    return errors


def image_violations(image: str) -> list[str]:
    name, _, tag = image.rpartition(":")
    if "@sha256:" in image:
        return []
    if not name or "/" in tag or not tag or tag == "latest":
        return [f"{image}: not pinned to a version"]
    return []


def test_only_the_gpu_node_is_labelled_and_tainted(renders):
    cluster = _defaults("cluster.yml")
    gpu_labels = ",".join(f"{k}={v}" for k, v in sorted(cluster["cluster_gpu_node_labels"].items()))
    for host in ("cp1", "cpu1", GPU_HOST):
        registration = next(iter(_kubeadm(renders["kubeadm"], host).values()))["nodeRegistration"]
        taint_keys = {t["key"] for t in registration["taints"]}
        is_gpu = host == GPU_HOST
        args = registration["kubeletExtraArgs"]
        if isinstance(args, list):  # kubeadm.k8s.io/v1beta4: [{name, value}]
            args = {a["name"]: a["value"] for a in args}
        assert (args["node-labels"] == gpu_labels) is is_gpu, host
        assert ("nvidia.com/gpu" in taint_keys) is is_gpu, host
        k3s = _load(os.path.join(renders["k3s"], "k3s", host, "config.yaml"))[0]
        assert ("nvidia.com/gpu=present:NoSchedule" in k3s["node-taint"]) is is_gpu, host
        assert ("nvidia.com/gpu.present=true" in k3s["node-label"]) is is_gpu, host
    nodes = {n["metadata"]["name"]: n for n in _by_kind(renders["kubeadm"], "nodes", "Node")}
    # Names come from the hosts' facts; the GPU host's name says nothing about GPUs.
    assert set(nodes) == {"llama-master", "llama-worker", "llama-node-3"}
    assert nodes["llama-node-3"]["spec"]["taints"] == cluster["cluster_gpu_node_taints"]
    assert "spec" not in nodes["llama-worker"] and "spec" not in nodes["llama-master"]


@pytest.mark.parametrize("variant", ["kubeadm", "k3s"])
def test_device_plugin_runs_only_on_gpu_nodes(renders, variant):
    cluster = _defaults("cluster.yml")
    daemonset = _by_kind(renders[variant], "nvidia-device-plugin", "DaemonSet")[0]
    assert device_plugin_violations(daemonset, cluster["cluster_gpu_node_labels"], cluster["cluster_gpu_node_taints"]) == []
    runtime_class = _by_kind(renders[variant], "nvidia-device-plugin", "RuntimeClass")[0]
    assert runtime_class["handler"] == "nvidia"
    assert daemonset["spec"]["template"]["spec"]["runtimeClassName"] == runtime_class["metadata"]["name"]
    smoke = _by_kind(renders[variant], "nvidia-device-plugin", "Pod")[0]
    assert smoke["spec"]["containers"][0]["command"] == ["nvidia-smi"]
    limits = smoke["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1 and {"cpu", "memory"} <= set(limits)
    assert device_plugin_violations({"spec": {"template": {"spec": smoke["spec"]}}},
                                    cluster["cluster_gpu_node_labels"], cluster["cluster_gpu_node_taints"]) == []


def test_device_plugin_policy_catches_a_cpu_selector_and_a_missing_toleration(renders):
    cluster = _defaults("cluster.yml")
    daemonset = _by_kind(renders["kubeadm"], "nvidia-device-plugin", "DaemonSet")[0]
    spec = daemonset["spec"]["template"]["spec"]
    spec["nodeSelector"] = {"llmops.io/accelerator": "none"}
    spec["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
    errors = device_plugin_violations(daemonset, cluster["cluster_gpu_node_labels"], cluster["cluster_gpu_node_taints"])
    assert len(errors) == 3, errors


@pytest.mark.parametrize("variant", ["kubeadm", "k3s"])
def test_one_pod_cidr_everywhere(renders, variant):
    cluster = _defaults("cluster.yml")
    pool = _by_kind(renders[variant], "calico", "Installation")[0]["spec"]["calicoNetwork"]["ipPools"][0]
    if variant == "kubeadm":
        networking = _kubeadm(renders[variant], "cp1")["ClusterConfiguration"]["networking"]
        pod, service = networking["podSubnet"], networking["serviceSubnet"]
    else:
        server = _load(os.path.join(renders[variant], "k3s", "cp1", "config.yaml"))[0]
        pod, service = server["cluster-cidr"], server["service-cidr"]
        assert server["flannel-backend"] == "none" and server["disable-network-policy"] is True
    assert pod == pool["cidr"] == cluster["cluster_pod_cidr"]
    assert service == cluster["cluster_service_cidr"]
    assert not ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(service))
    # Seed 000/001's VPC: pods must not shadow node addresses.
    assert not ipaddress.ip_network(pod).overlaps(ipaddress.ip_network("10.10.0.0/16"))


def test_kubelet_uses_systemd_cgroups_and_containerd(renders):
    docs = _kubeadm(renders["kubeadm"], "cp1")
    kubelet = docs["KubeletConfiguration"]
    socket = "unix:///run/containerd/containerd.sock"
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["containerRuntimeEndpoint"] == socket
    for host in ("cp1", "cpu1", GPU_HOST):
        assert next(iter(_kubeadm(renders["kubeadm"], host).values()))["nodeRegistration"]["criSocket"] == socket


def test_versions_are_pinned_and_nothing_says_latest(renders):
    versions = _defaults("versions.yml")["platform_versions"]
    # A supported release by default (1.29 is past end of life); 1.29.15 is rendered by the
    # kubeadm_1_29 variant.
    assert versions["kubernetes"] == "1.36.4"
    assert versions["kubernetes_package"] == versions["kubernetes"] + "-1.1"
    assert versions["kubernetes_upgrade_package"] == versions["kubernetes_upgrade"] + "-1.1"
    # K3s runs the same Kubernetes patch, before and after upgrade.yml.
    assert versions["k3s"] == "v" + versions["kubernetes"] + "+k3s1"
    assert versions["k3s_upgrade"] == "v" + versions["kubernetes_upgrade"] + "+k3s1"
    # The CRI sandbox image is the pause image kubeadm of that minor expects.
    pause = {"1.29": "3.9", "1.30": "3.9", "1.31": "3.10", "1.32": "3.10", "1.33": "3.10", "1.34": "3.10.1",
             "1.35": "3.10.1", "1.36": "3.10.2"}
    minor = ".".join(versions["kubernetes"].split(".")[:2])
    assert versions["containerd_sandbox_image"] == "registry.k8s.io/pause:" + pause[minor]
    assert re.fullmatch(r"[0-9a-f]{64}", versions["calico_archive_sha256"])
    for key in ("kubernetes", "kubernetes_upgrade", "k3s", "k3s_upgrade", "calico"):
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(\+k3s\d+)?", versions[key]), key
    # One minor step for upgrade.yml.
    assert int(versions["kubernetes_upgrade"].split(".")[1]) == int(versions["kubernetes"].split(".")[1]) + 1
    assert _kubeadm(renders["kubeadm"], "cp1")["ClusterConfiguration"]["kubernetesVersion"] == "v" + versions["kubernetes"]
    assert _kubeadm(renders["kubeadm_1_29"], "cp1")["ClusterConfiguration"]["kubernetesVersion"] == "v1.29.15"
    for variant in ("kubeadm", "k3s"):
        images = []
        for name in files(renders[variant]):
            text = open(os.path.join(renders[variant], name), encoding="utf-8").read()
            assert "latest" not in text, name
            images += re.findall(r"^\s*image:\s*(\S+)", text, re.M)
        assert images and all(image_violations(i) == [] for i in images), images
    assert image_violations("docker.io/vllm/vllm-openai:latest") and image_violations("nvidia/cuda")


def test_no_secret_in_rendered_files(renders):
    for host in ("cpu1", GPU_HOST):
        discovery = _kubeadm(renders["kubeadm"], host)["JoinConfiguration"]["discovery"]["bootstrapToken"]
        assert discovery["token"] == "REDACTED"
    assert "bootstrapTokens" not in _kubeadm(renders["kubeadm"], "cp1")["InitConfiguration"]
    for host in ("cp1", "cpu1", GPU_HOST):
        config = _load(os.path.join(renders["k3s"], "k3s", host, "config.yaml"))[0]
        assert "token" not in config and config["token-file"].startswith("/etc/rancher/k3s/")


def test_switching_distribution_changes_only_its_files(renders):
    kubeadm, k3s = renders["kubeadm"], renders["k3s"]
    assert {f.split("/")[0] for f in files(kubeadm)} == {"kubeadm", "calico", "nodes", "nvidia-device-plugin"}
    assert {f.split("/")[0] for f in files(k3s)} == {"k3s", "calico", "nodes", "nvidia-device-plugin"}
    for sub in ("nodes", "nvidia-device-plugin"):
        cmp = filecmp.dircmp(os.path.join(kubeadm, sub), os.path.join(k3s, sub))
        assert cmp.left_only == cmp.right_only == cmp.diff_files == [], sub
    # Calico differs only by the forwarding K3s needs.
    a = _by_kind(kubeadm, "calico", "Installation")[0]
    b = _by_kind(k3s, "calico", "Installation")[0]
    assert b["spec"]["calicoNetwork"].pop("containerIPForwarding") == "Enabled"
    assert a == b


def test_a_tag_runs_alone(renders):
    assert files(renders["calico_only"]) == ["calico/10-installation.yaml"]
    assert files(renders["kubeadm_1_29"]) == [
        "kubeadm/control-plane/audit-policy.yaml", "kubeadm/control-plane/encryption-config.yaml",
        "kubeadm/cp1-init.yaml", "kubeadm/cpu1-join.yaml", "kubeadm/gpu1-join.yaml"]
