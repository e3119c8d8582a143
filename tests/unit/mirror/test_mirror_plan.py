"""The mirror's artifact list comes from versions.yml: what each selection needs, with the pinned
sha256 of versions.yml, and bad selections name the inventory variable to fix."""
import os
import re

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.filter import mirror as mirror_filters
from ansible_collections.llmops.platform.plugins.module_utils.mirror import plan, urls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]

KUBEADM_GPU = {"target": "kubernetes", "nodes": True, "gpu": True, "distribution": "kubeadm",
               "router_implementation": "gateway_api_inference", "vllm_device": "gpu",
               "models": ["hf:Qwen/Qwen2.5-0.5B-Instruct@abc123", "generated:tiny-llama", "path:/srv/m"],
               "venvs": ["control"]}


def by_name(artifacts):
    return {a.name: a for a in artifacts}


def test_local_target_needs_its_venvs_and_local_prometheus_only():
    arts = by_name(plan.plan(VERSIONS, {"target": "local", "venvs": ["serving", "finetune", "mlflow"]},
                             locks={"serving": "a" * 64}))
    assert set(arts) == {"wheels:serving", "wheels:finetune", "wheels:mlflow", "deb:prometheus",
                         "deb:prometheus-alertmanager"}
    # The Debian packages carry the versions.yml pins (revision and the archive's sha256).
    prom = arts["deb:prometheus"]
    assert prom.source == f"prometheus={VERSIONS['prometheus_debian']}"
    assert prom.sha256 == VERSIONS["prometheus_debian_sha256"]
    assert arts["wheels:serving"].sha256 == "a" * 64 and arts["wheels:serving"].roles == ("vllm", "router", "gateway")


def test_kubeadm_gpu_cluster_lists_every_layer_with_pins():
    arts = by_name(plan.plan(VERSIONS, KUBEADM_GPU))
    assert arts["deb:kubelet"].source == f"kubelet={VERSIONS['kubernetes_package']}"
    assert arts["deb:kubelet"].extra["repo"] == "kubernetes"
    assert arts["deb:kubeadm@upgrade"].source == f"kubeadm={VERSIONS['kubernetes_upgrade_package']}"
    assert arts["deb:containerd"].source == f"containerd={VERSIONS['containerd_debian']}"
    assert arts["deb:nvidia-smi"].version == VERSIONS["nvidia_driver_debian"]
    assert arts["deb:nvidia-container-toolkit"].extra["repo"] == "nvidia_container_toolkit"
    calico = arts[f"file:calico-archive@{VERSIONS['calico']}"]
    assert calico.sha256 == VERSIONS["calico_archive_sha256"]
    assert calico.source == VERSIONS["calico_archive_url"].replace("{version}", VERSIONS["calico"])
    assert calico.path == f"files/github.com/projectcalico/calico/archive/{VERSIONS['calico']}.tar.gz"
    helm = arts[f"file:helm-amd64@{VERSIONS['helm']}"]
    assert helm.sha256 == VERSIONS["helm_sha256"]["amd64"]
    crd = arts[f"file:inferencepool-crd@{VERSIONS['gateway_api_inference_extension']}"]
    assert crd.sha256 == VERSIONS["gateway_api_inference_extension_crd_sha256"] and crd.roles == ("router",)
    images = {a.source for a in arts.values() if a.kind == "image"}
    assert {VERSIONS["vllm_gpu_image"], VERSIONS["containerd_sandbox_image"], VERSIONS["nvidia_device_plugin_image"],
            VERSIONS["dcgm_exporter_image"], VERSIONS["gateway_api_inference_extension_epp_image"],
            VERSIONS["llama_factory_image"]} <= images
    assert VERSIONS["vllm_cpu_image"] not in images
    # Only hf: models are mirrored: generated ones are made on the host, path: ones are yours.
    assert [a.name for a in arts.values() if a.kind == "model"] == ["model:Qwen/Qwen2.5-0.5B-Instruct@abc123"]
    # No K3s on a kubeadm cluster.
    assert not [n for n in arts if "k3s" in n]


def test_k3s_release_files_without_pins_are_checked_by_the_release_checksum_list():
    # The upgrade target has no pin in versions.yml: the release's own checksum list verifies it.
    version = VERSIONS["k3s_upgrade"]
    assert not (VERSIONS.get("k3s_sha256") or {}).get(version)
    arts = by_name(plan.plan(VERSIONS, {"target": "kubernetes", "nodes": True, "distribution": "k3s",
                                        "containerd_install_method": "release", "upgrade": True}))
    binary = arts[f"file:k3s-binary-amd64@{version}"]
    assert binary.sha256 == "" and "sha256sum-amd64.txt" in binary.verify
    assert binary.source.endswith(f"/{version.replace('+', '%2B')}/k3s")
    assert binary.path.endswith(f"/{version}/k3s")  # stored decoded, as a static server maps it
    assert f"file:k3s-sha256sum-amd64@{version}" in arts
    # The default release is pinned: its files are checked against versions.yml.
    current = VERSIONS["k3s"]
    pins = VERSIONS["k3s_sha256"][current]["amd64"]
    assert arts[f"file:k3s-binary-amd64@{current}"].sha256 == pins["binary"]
    assert arts[f"file:k3s-airgap-images-amd64@{current}"].sha256 == pins["airgap_images"]
    assert not [n for n in arts if n.startswith("deb:kube")]
    containerd = arts[f"file:containerd-amd64@{VERSIONS['containerd_release']}"]
    assert containerd.sha256 == VERSIONS["containerd_release_sha256"]["amd64"]


def test_k3s_pins_are_used_once_filled_in():
    version = VERSIONS["k3s"]
    pinned = {**VERSIONS, "k3s_sha256": {version: {"amd64": {"binary": "b" * 64, "airgap_images": "c" * 64}}}}
    arts = by_name(plan.plan(pinned, {"nodes": True, "distribution": "k3s", "upgrade": False}))
    assert arts[f"file:k3s-binary-amd64@{version}"].sha256 == "b" * 64
    assert arts[f"file:k3s-airgap-images-amd64@{version}"].sha256 == "c" * 64


def test_role_level_overrides_and_kinds():
    arts = by_name(plan.plan(VERSIONS, {"nodes": True, "kubernetes_package": "1.29.15-1.1", "kinds": ["deb"],
                                        "upgrade": False}))
    assert arts["deb:kubeadm"].source == "kubeadm=1.29.15-1.1"
    assert {a.kind for a in arts.values()} == {"deb"}


def test_image_digests_are_the_pins_of_images():
    digest = "sha256:" + "d" * 64
    arts = by_name(plan.plan(VERSIONS, {"target": "kubernetes", "kinds": ["image"], "finetune": False},
                             image_digests={"vllm_cpu_image": digest}))
    (image,) = arts.values()
    assert image.sha256 == "d" * 64 and image.extra["registry"] == "public.ecr.aws"


@pytest.mark.parametrize("selection,field", [
    ({"target": "cloud"}, "mirror_selection.target"),
    ({"arches": ["s390x"]}, "mirror_selection.arches"),
    ({"arches": []}, "mirror_selection.arches"),
    ({"colour": "blue"}, "mirror_selection.colour"),
    ({"gpu": "maybe"}, "mirror_selection.gpu"),
    ({"venvs": "serving"}, "mirror_selection.venvs"),
    ({"models": ["hf:not a repo"]}, "llm_models[0].source"),
])
def test_bad_selections_name_the_field(selection, field):
    with pytest.raises(plan.PlanError, match="^" + re.escape(field)):
        plan.plan(VERSIONS, selection)


def test_a_bad_pin_names_the_versions_key():
    with pytest.raises(plan.PlanError, match=r"platform_versions.calico_archive_sha256"):
        plan.plan({**VERSIONS, "calico_archive_sha256": "not-a-sha"}, {"nodes": True})


def test_artifacts_for_the_roles_of_a_play():
    arts = plan.plan(VERSIONS, KUBEADM_GPU)
    names = {a.name for a in plan.for_roles(arts, ["llmops.platform.platform_defaults", "llmops.platform.calico"])}
    assert names == {f"file:calico-archive@{VERSIONS['calico']}"}


def test_filter_plan_is_what_the_build_uses():
    dicts = mirror_filters.mirror_plan(VERSIONS, KUBEADM_GPU)
    assert [d["name"] for d in dicts] == [a.name for a in plan.plan(VERSIONS, KUBEADM_GPU)]
    assert all(isinstance(d["roles"], list) for d in dicts)


# ---- URL rewriting (every get_url of the roles goes through urls.rewrite) ----

def test_rewrite_keeps_the_path_under_files_host():
    url = "https://github.com/k3s-io/k3s/releases/download/v1.36.4%2Bk3s1/k3s"
    assert urls.mirror_path(url) == "files/github.com/k3s-io/k3s/releases/download/v1.36.4+k3s1/k3s"
    assert urls.rewrite(url, "http://bastion:8080/") == \
        "http://bastion:8080/files/github.com/k3s-io/k3s/releases/download/v1.36.4%2Bk3s1/k3s"
    assert urls.rewrite(url, "") == url  # no mirror: upstream as before


def test_rewrite_of_a_checksum_file_reference_and_of_non_urls():
    ref = "sha256:https://get.helm.sh/sha256sum.txt"
    assert urls.rewrite(ref, "http://m:1") == "sha256:http://m:1/files/get.helm.sh/sha256sum.txt"
    assert urls.rewrite("sha256:" + "a" * 64, "http://m:1") == "sha256:" + "a" * 64


def test_rewrite_refuses_a_bad_mirror_url_naming_the_variable():
    with pytest.raises(urls.MirrorUrlError, match="^platform_mirror_url: 'bastion:8080'"):
        urls.rewrite("https://get.helm.sh/x", "bastion:8080")


def test_filters_for_the_layers():
    assert mirror_filters.mirror_url("https://get.helm.sh/helm.tgz", "http://m:8080") == \
        "http://m:8080/files/get.helm.sh/helm.tgz"
    assert mirror_filters.mirror_registry_url("http://m:8080/sub/") == "http://m:8080"
    assert mirror_filters.mirror_registry_url("") == ""
    assert mirror_filters.mirror_environment("http://m:8080") == {
        "LLMOPS_PIP_FIND_LINKS": "http://m:8080/pypi/", "HF_ENDPOINT": "http://m:8080/hf"}
    assert mirror_filters.mirror_environment("") == {}
    registries = mirror_filters.mirror_registries(VERSIONS)
    assert {"docker.io", "registry.k8s.io", "nvcr.io", "public.ecr.aws", "quay.io"} <= set(registries)
    assert mirror_filters.mirror_upstream("docker.io") == "https://registry-1.docker.io"
    assert mirror_filters.mirror_model_sources([{"source": "hf:a/b", "source_scheme": "hf", "source_ref": "a/b",
                                                 "revision": "v1"}, {"source": "generated:tiny-llama"}]) == \
        ["hf:a/b@v1", "generated:tiny-llama"]
