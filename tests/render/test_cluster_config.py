"""Rendered cluster files are valid for what reads them: the API server (OpenAPI schemas
of 1.29 and the newest bundled version), kubeadm/kubelet (their API types) and K3s (its
documented options). Each check also gets a broken copy, to show it fails."""
from __future__ import annotations

import copy
import glob
import os

import pytest
from cluster_api_fields import check_k3s_config, check_kubeadm_document
from cluster_render import files, load_docs, render_all
from k8s_validate import validate_object, validate_paths


@pytest.fixture(scope="module")
def renders() -> dict[str, str]:
    return render_all()


def _manifest_dirs(render_dir: str) -> list[str]:
    return [os.path.join(render_dir, d) for d in ("calico", "nodes", "nvidia-device-plugin")]


@pytest.mark.parametrize("variant", ["kubeadm", "k3s"])
def test_kubernetes_objects_validate(renders, variant):
    dirs = _manifest_dirs(renders[variant])
    assert all(os.path.isdir(d) for d in dirs), files(renders[variant])
    assert validate_paths(dirs) == []


def test_every_manifest_kind_is_expected(renders):
    kinds = set()
    for directory in _manifest_dirs(renders["kubeadm"]):
        for path in glob.glob(os.path.join(directory, "*.yaml")):
            kinds |= {d["kind"] for d in load_docs(path)}
    assert kinds == {"Installation", "APIServer", "Node", "RuntimeClass", "ConfigMap", "DaemonSet", "Pod"}


def test_schema_validation_catches_a_misspelt_field(renders):
    path = os.path.join(renders["kubeadm"], "nvidia-device-plugin", "device-plugin.yaml")
    daemonset = next(d for d in load_docs(path) if d["kind"] == "DaemonSet")
    assert validate_object(daemonset) == []
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["nodeSelecter"] = broken["spec"]["template"]["spec"].pop("nodeSelector")
    errors = validate_object(broken)
    assert errors and "nodeSelecter" in " ".join(errors)


def _kubeadm_files(render_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(render_dir, "kubeadm", "*.yaml")))


@pytest.mark.parametrize("variant,minor", [("kubeadm", "1.36"), ("kubeadm_1_29", "1.29")])
def test_kubeadm_configs_match_the_api_types(renders, variant, minor):
    paths = _kubeadm_files(renders[variant])
    assert [os.path.basename(p) for p in paths] == ["cp1-init.yaml", "cpu1-join.yaml", "gpu1-join.yaml"]
    kinds = []
    for path in paths:
        for doc in load_docs(path):
            kinds.append(doc["kind"])
            assert check_kubeadm_document(doc, minor) == [], path
    assert sorted(set(kinds)) == ["ClusterConfiguration", "InitConfiguration", "JoinConfiguration", "KubeletConfiguration"]


def test_v1beta4_uses_structured_extra_args(renders):
    init = load_docs(os.path.join(renders["kubeadm"], "kubeadm", "cp1-init.yaml"))
    assert init[0]["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    args = init[0]["nodeRegistration"]["kubeletExtraArgs"]
    assert isinstance(args, list) and {"name": "node-ip", "value": "10.10.1.10"} in args


def test_kubeadm_check_catches_wrong_fields_and_versions(renders):
    init, cluster, kubelet = load_docs(os.path.join(renders["kubeadm_1_29"], "kubeadm", "cp1-init.yaml"))
    assert init["apiVersion"] == "kubeadm.k8s.io/v1beta3" and cluster["kubernetesVersion"] == "v1.29.15"
    broken = copy.deepcopy(cluster)
    broken["networking"]["podSubnets"] = broken["networking"].pop("podSubnet")
    assert check_kubeadm_document(broken, "1.29") == ["ClusterConfiguration (kubeadm.k8s.io/v1beta3): networking.podSubnets: unknown field"]
    # A v1beta4-only field in a v1beta3 file, and v1beta3 for a 1.31 cluster.
    assert check_kubeadm_document({**init, "dryRun": True}, "1.29")
    assert check_kubeadm_document(init, "1.31") == ["InitConfiguration (kubeadm.k8s.io/v1beta3): Kubernetes 1.31 reads kubeadm.k8s.io/v1beta4"]
    # A kubelet field that 1.29 does not know yet.
    assert check_kubeadm_document({**kubelet, "failCgroupV1": True}, "1.29") == [
        "KubeletConfiguration (kubelet.config.k8s.io/v1beta1): failCgroupV1: unknown field"]
    assert check_kubeadm_document({**kubelet, "failCgroupV1": True}, "1.31") == []


def test_k3s_configs_use_documented_keys(renders):
    k3s = renders["k3s"]
    assert sorted(os.listdir(os.path.join(k3s, "k3s"))) == ["cp1", "cpu1", "gpu1"]
    for host, server in (("cp1", True), ("cpu1", False), ("gpu1", False)):
        config = load_docs(os.path.join(k3s, "k3s", host, "config.yaml"))[0]
        assert check_k3s_config(config, server) == [], host
    server = load_docs(os.path.join(k3s, "k3s", "cp1", "config.yaml"))[0]
    # Server-only keys on an agent, and a misspelt key, are caught.
    assert check_k3s_config(server, server=False)
    assert check_k3s_config({**server, "cluster-cdir": "10.0.0.0/16"}, server=True) == [
        "cluster-cdir: not a documented K3s server option"]
