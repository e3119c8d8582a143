"""The one vLLM server builder: argv, env, GPUs, and on Kubernetes probes, security,
volumes and the pod; every error names the field and the fix."""
import copy
import os
import subprocess
import sys

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models, vllm_cli_args
from ansible_collections.llmops.platform.plugins.module_utils.kvcached import resolve
from ansible_collections.llmops.platform.plugins.module_utils.vllm_k8s_pod import KubernetesSettings, k8s_server
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import (
    BASE_ENV,
    ServerError,
    entry_for,
    gpu_count,
    local_server,
    parallel_size,
    target_from,
)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "render"))
from k8s_validate import validate_object  # noqa: E402

SHA = "0e9e39f249a16976918f6564b8830bc894c89659"
K8S = {
    "image": "docker.io/vllm/vllm-openai:v0.32.0", "image_pull_policy": "IfNotPresent", "image_pull_secrets": [],
    "port": 8000, "model_cache_claim": "llm-model-cache", "model_cache_mount": "/models",
    "path_volume_claim": "", "path_volume_mount": "/storage", "hf_token_secret": "llm-hf-token",
    "run_as_user": 1000, "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "12Gi"}},
    "shm_size": "2Gi", "startup_timeout_s": 1800, "readiness_period_s": 5, "liveness_period_s": 30,
    "liveness_timeout_s": 10, "liveness_failure_threshold": 6, "prestop_sleep_s": 15, "termination_grace_s": 120,
    "node_selector": {}, "gpu_node_selector": {"nvidia.com/gpu.present": "true"},
    "gpu_tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}
LOCAL = {"kind": "local", "device": "cpu", "kvcache_space_gib": 2, "env": {"EXTRA": "x"}, "host": "127.0.0.1"}
GPU = {"kind": "kubernetes", "device": "gpu", "kvcache_space_gib": 1, "kubernetes": K8S}


def entry(**kw):
    base = {"name": "chat", "source": "generated:tiny-llama", "replicas": 2, "vllm_args": {"max_num_seqs": 8},
            "replica_vllm_args": [{}, {"max_num_seqs": 16}], "env": {"EXTRA": "model"}}
    return normalize_models([{**base, **kw}], device="cpu", check_ports=False)[0]


def hf(**kw):
    return normalize_models([{"name": "llama", "source": f"hf:meta-llama/Llama-3.1-8B-Instruct@{SHA}", "gpus": 1,
                              "vllm_args": {"gpu_memory_utilization": 0.9}, **kw}], device="gpu")[0]


def test_local_argv_is_the_address_the_weights_the_name_then_the_replica_args():
    server = local_server(entry(), LOCAL, "/models/tiny", "/v/bin/python", replica=1)
    assert server["argv"] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server",
                              "--host", "127.0.0.1", "--port", "8101", "--model", "/models/tiny",
                              "--served-model-name", "chat", "--max-num-seqs", "16"]
    assert server["port"] == 8101 and server["gpus"] == 0
    # A local hf: model is a resolved directory: no revision flags.
    assert "--revision" not in local_server(hf(), {**LOCAL, "device": "gpu"}, "/m")["argv"]


def test_env_base_then_target_then_cpu_kv_cache_then_the_model():
    env = local_server(entry(), LOCAL, "/m")["env"]
    assert env == {**BASE_ENV, "EXTRA": "model", "VLLM_CPU_KVCACHE_SPACE": "2"}
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"
    # The GPU backend sizes its cache from gpu_memory_utilization: no CPU variable there.
    assert "VLLM_CPU_KVCACHE_SPACE" not in k8s_server(hf(), GPU)["env"]


@pytest.mark.parametrize("device, gpus, args, expected", [
    ("cpu", 2, {"tensor_parallel_size": 2}, 0),
    ("gpu", 0, {}, 1),
    ("gpu", 0, {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}, 4),
    ("gpu", 8, {"tensor_parallel_size": 2}, 8),
])
def test_gpu_count_is_the_entry_or_one_per_parallel_rank(device, gpus, args, expected):
    assert gpu_count({"name": "m", "gpus": gpus, "vllm_args": args}, device) == expected


def test_fewer_gpus_than_parallel_ranks_names_the_field():
    with pytest.raises(ServerError) as err:
        k8s_server(hf(vllm_args={"tensor_parallel_size": 2}), GPU)
    assert err.value.field == "llm_models[llama].gpus" and "tensor_parallel_size x pipeline_parallel_size = 2" in str(err.value)
    assert parallel_size({"tensor_parallel_size": "2", "pipeline_parallel_size": 3}) == 6


def test_k8s_hf_server_pins_the_revision_and_reads_the_shared_cache():
    server = k8s_server(hf(), GPU)
    assert server["argv"][:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert server["argv"][3:] == ["--host", "0.0.0.0", "--port", "8000", "--model", "meta-llama/Llama-3.1-8B-Instruct",
                                  "--served-model-name", "llama", "--revision", SHA, "--tokenizer-revision", SHA,
                                  *vllm_cli_args(hf()["vllm_args"])]
    assert server["env"]["HF_HUB_CACHE"] == "/models/hub" and server["env"]["HOME"] == "/cache/home"
    assert [c["name"] for c in server["init_containers"]] == ["model-download"]
    download = {e["name"]: e for e in server["init_containers"][0]["env"]}
    assert download["LLM_MODEL_MARKER"]["value"] == f"/models/.llmops/complete/meta-llama--Llama-3.1-8B-Instruct@{SHA}"
    assert download["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "llm-hf-token", "key": "token", "optional": True}
    assert {v["name"] for v in server["volumes"]} == {"shm", "cache", "tmp", "model-cache", "download-script"}
    # The server reads the shared cache; only the download init container writes it.
    assert {"name": "model-cache", "mountPath": "/models", "readOnly": True} in server["volume_mounts"]
    assert {"name": "model-cache", "mountPath": "/models"} in server["init_containers"][0]["volumeMounts"]
    # A tokenizer of its own keeps its own revision.
    args = k8s_server(hf(vllm_args={"tokenizer": "org/tok"}), GPU)["argv"]
    assert "--tokenizer-revision" not in args and "--revision" in args
    no_at = normalize_models([{"name": "m", "source": "hf:org/m", "revision": "abc"}], device="gpu")[0]
    assert k8s_server(no_at, GPU)["annotations"] == {"llmops.platform/model-source": "hf:org/m@abc"}


def test_k8s_refuses_what_a_cluster_cannot_serve():
    with pytest.raises(ServerError) as err:
        k8s_server(entry(), GPU)
    assert err.value.field == "llm_models[chat].source" and "local target only" in str(err.value)
    model = normalize_models([{"name": "own", "source": "path:/storage/own"}], device="gpu")[0]
    with pytest.raises(ServerError) as err:
        k8s_server(model, GPU)
    assert "vllm_k8s_path_volume_claim (unset)" in str(err.value)
    on_claim = {**GPU, "kubernetes": {**K8S, "path_volume_claim": "models"}}
    server = k8s_server(model, on_claim)
    assert {"name": "models", "mountPath": "/storage", "readOnly": True} in server["volume_mounts"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in server["volumes"]
    assert "initContainers" not in server["pod"]["spec"] and "HF_HUB_CACHE" not in server["env"]
    elsewhere = normalize_models([{"name": "own", "source": "path:/data/own"}], device="gpu")[0]
    with pytest.raises(ServerError):
        k8s_server(elsewhere, on_claim)


def test_security_context_non_root_seccomp_no_privileges_everywhere():
    pod = k8s_server(hf(), GPU)["pod"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                      "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    for container in pod["containers"] + pod["initContainers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
            "seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True}
        # Read-only root: scratch space is the pod's own emptyDir.
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    image_user = k8s_server(hf(), {**GPU, "kubernetes": {**K8S, "run_as_user": None}})["pod"]["spec"]
    assert image_user["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert "runAsNonRoot" not in image_user["containers"][0]["securityContext"]


def test_probes_cover_slow_loads_and_busy_pods():
    probes = k8s_server(hf(), {**GPU, "kubernetes": {**K8S, "startup_timeout_s": 905}})["probes"]
    assert probes["startupProbe"]["periodSeconds"] * probes["startupProbe"]["failureThreshold"] >= 905
    assert probes["startupProbe"]["failureThreshold"] == 91
    assert probes["readinessProbe"]["periodSeconds"] == 5 and probes["readinessProbe"]["failureThreshold"] == 3
    assert (probes["livenessProbe"]["periodSeconds"], probes["livenessProbe"]["timeoutSeconds"],
            probes["livenessProbe"]["failureThreshold"]) == (30, 10, 6)
    assert all(p["httpGet"] == {"path": "/health", "port": "http"} for p in probes.values())


def test_gpus_are_requested_once_with_their_placement_and_cpu_gets_none():
    server = k8s_server(hf(gpus=0, vllm_args={"tensor_parallel_size": 2}), GPU)
    assert server["gpus"] == 2
    assert server["resources"]["requests"]["nvidia.com/gpu"] == server["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert server["resources"]["requests"]["cpu"] == "2" and K8S["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    spec = server["pod"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"} and spec["tolerations"] == K8S["gpu_tolerations"]
    cpu = k8s_server(hf(), {**GPU, "device": "cpu", "kubernetes": {**K8S, "node_selector": {"pool": "cpu"}}})
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"] and "tolerations" not in cpu["pod"]["spec"]
    assert cpu["pod"]["spec"]["nodeSelector"] == {"pool": "cpu"} and cpu["env"]["VLLM_CPU_KVCACHE_SPACE"] == "1"


def _kvcached(**settings):
    base = {"enabled": True, "version": "0.1.6", "sha256": "a" * 64, "image": "docker.io/vllm/vllm-openai:v0.30.0",
            "install": "pip", "pip_index_url": "", "env": {}, "install_resources": {"requests": {"cpu": "1"}}}
    return {**GPU, "kvcached": resolve({**base, **settings}, [hf()], "gpu", "kubernetes")}


def test_kvcached_pip_installs_first_into_the_volume_the_server_reads():
    server = k8s_server(hf(), _kvcached())
    spec = server["pod"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["kvcached-install", "model-download"]
    assert server["image"] == spec["initContainers"][0]["image"] == "docker.io/vllm/vllm-openai:v0.30.0"
    assert server["env"]["ENABLE_KVCACHED"] == "true" and server["env"]["PYTHONUSERBASE"] == "/opt/kvcached"
    assert {"name": "kvcached", "mountPath": "/opt/kvcached", "readOnly": True} in server["volume_mounts"]
    assert server["annotations"]["llmops.platform/kvcached"] == "0.1.6"
    script = spec["initContainers"][0]["args"][0]
    assert "--require-hashes" in script
    subprocess.run(["sh", "-n", "-c", script], check=True)
    prebuilt = k8s_server(hf(), _kvcached(install="image", image="reg/vllm-kvcached:1", sha256=""))
    assert [c["name"] for c in prebuilt["init_containers"]] == ["model-download"]
    assert prebuilt["image"] == "reg/vllm-kvcached:1" and "PYTHONUSERBASE" not in prebuilt["env"]


@pytest.mark.parametrize("target", [GPU, _kvcached(), {**GPU, "device": "cpu"}])
def test_the_pod_validates_in_a_deployment(target):
    server = k8s_server(hf(), target)
    labels = {"app": "x"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llama", "namespace": "ns"},
                  "spec": {"selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels, **server["pod"]["metadata"]},
                                        "spec": server["pod"]["spec"]}}}
    assert validate_object(deployment) == []


def test_target_and_settings_errors_name_the_field():
    with pytest.raises(ServerError) as err:
        target_from({"kind": "cloud"})
    assert err.value.field == "vllm_server_target.kind"
    with pytest.raises(ServerError) as err:
        target_from({"gpus": 1})
    assert err.value.field == "vllm_server_target.gpus"
    settings = copy.deepcopy(K8S)
    del settings["shm_size"]
    with pytest.raises(ServerError) as err:
        KubernetesSettings.from_facts(settings)
    assert err.value.field == "vllm_server_target.kubernetes.shm_size"
    with pytest.raises(ServerError) as err:
        KubernetesSettings.from_facts({**K8S, "port": "http"})
    assert err.value.field == "vllm_server_target.kubernetes.port"
    with pytest.raises(ServerError):
        local_server(entry(), GPU, "/m")


def test_entry_for_a_bare_source_is_the_normalised_shape():
    bare = entry_for(f"hf:org/m@{SHA}", "m")
    full = normalize_models([{"name": "m", "source": f"hf:org/m@{SHA}", "port": 8100}], check_ports=False)[0]
    assert {k: v for k, v in full.items() if k not in ("port", "ports")} == bare


def test_the_filter_reports_errors_as_filter_errors():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.llmops.platform.plugins.filter.vllm_server import vllm_server

    assert vllm_server(entry(), LOCAL, replica=1, model_dir="/m", python="/p")["argv"][0] == "/p"
    assert vllm_server(hf(), GPU)["pod"]["spec"]["containers"][0]["name"] == "vllm"
    with pytest.raises(AnsibleFilterError) as err:
        vllm_server(entry(), GPU)
    assert "llm_models[chat].source" in str(err.value)
