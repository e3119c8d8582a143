"""The one vLLM server builder: argv, env, GPUs, and on Kubernetes probes, security,
volumes and the pod; every error names the field and the fix."""
import copy
import json
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


def tiny_chat(*adapters, **kw):
    """The example of the docs: tiny-chat with LoRA adapters (normalised, CPU defaults)."""
    return normalize_models([{"name": "tiny-chat", "source": "generated:tiny-llama", "adapters": list(adapters), **kw}],
                            default_args={"max_num_seqs": 64, "dtype": "bfloat16", "block_size": 32},
                            device="cpu")[0]


FT = {"name": "tiny-chat-ft", "source": "path:/srv/adapters/ft"}
SQL = {"name": "tiny-chat-sql", "source": f"hf:org/sql-lora@{SHA}"}


def test_local_adapters_enable_lora_with_one_slot_each_and_the_rank_rounded_up():
    server = local_server(tiny_chat(FT, SQL), LOCAL, "/m/tiny", "/v/bin/python",
                          adapters={"tiny-chat-ft": {"path": "/srv/adapters/ft", "rank": 4},
                                    "tiny-chat-sql": {"path": "/hub/sql", "rank": 24}})
    assert server["argv"][3:] == [
        "--host", "127.0.0.1", "--port", "8100", "--model", "/m/tiny", "--served-model-name", "tiny-chat",
        "--block-size", "32", "--dtype", "bfloat16", "--enable-lora", "--max-lora-rank", "32", "--max-loras", "2",
        "--max-num-seqs", "64", "--lora-modules", "tiny-chat-ft=/srv/adapters/ft", "tiny-chat-sql=/hub/sql"]
    # No adapters, no LoRA flags at all.
    assert not any("lora" in a for a in local_server(tiny_chat(), LOCAL, "/m/tiny")["argv"])


@pytest.mark.parametrize("rank, expected", [(1, 1), (2, 8), (8, 8), (9, 16), (16, 16), (48, 64), (300, 320), (512, 512)])
def test_the_rank_is_rounded_up_to_one_vllm_accepts(rank, expected):
    argv = local_server(tiny_chat(FT), LOCAL, "/m", adapters={"tiny-chat-ft": {"path": "/a", "rank": rank}})["argv"]
    assert argv[argv.index("--max-lora-rank") + 1] == str(expected)


def test_vllm_args_win_and_errors_name_the_field():
    resolved = {"tiny-chat-ft": {"path": "/a", "rank": 8}}
    argv = local_server(tiny_chat(FT, vllm_args={"max_loras": 3, "max_lora_rank": 64}), LOCAL, "/m",
                        adapters=resolved)["argv"]
    assert argv[argv.index("--max-loras") + 1] == "3" and argv[argv.index("--max-lora-rank") + 1] == "64"
    assert argv.count("--max-loras") == 1 and argv.count("--enable-lora") == 1
    with pytest.raises(ServerError) as err:
        local_server(tiny_chat(FT, vllm_args={"max_lora_rank": 8}), LOCAL, "/m",
                     adapters={"tiny-chat-ft": {"path": "/a", "rank": 16}})
    assert err.value.field == "llm_models[tiny-chat].vllm_args.max_lora_rank" and "at least 16" in str(err.value)
    with pytest.raises(ServerError) as err:
        local_server(tiny_chat(SQL, FT), LOCAL, "/m", adapters={"tiny-chat-ft": {"path": "/a", "rank": 1024},
                                                                "tiny-chat-sql": {"path": "/b", "rank": 8}})
    assert err.value.field == "llm_models[tiny-chat].adapters[1].source" and "512" in str(err.value)
    with pytest.raises(ServerError) as err:
        local_server(tiny_chat(FT, SQL), LOCAL, "/m", adapters=resolved)
    assert err.value.field == "llm_models[tiny-chat].adapters[1].source" and "not resolved" in str(err.value)


def test_unknown_ranks_fall_back_to_vllms_default_and_odd_paths_go_as_json():
    argv = local_server(tiny_chat(FT), LOCAL, "/m", adapters={"tiny-chat-ft": "/srv/a,b"})["argv"]
    assert argv[argv.index("--max-lora-rank") + 1] == "16"
    assert argv[-2:] == ["--lora-modules", '{"name": "tiny-chat-ft", "path": "/srv/a,b"}']


def test_k8s_adapters_hf_from_the_cache_path_from_the_claim():
    on_claim = {**GPU, "kubernetes": {**K8S, "path_volume_claim": "models", "path_volume_mount": "/srv"}}
    model = hf(adapters=[FT, {**SQL, "name": "llama-sql"}])
    server = k8s_server(model, on_claim)
    args = server["argv"]
    assert args[args.index("--lora-modules"):] == [
        "--lora-modules", "tiny-chat-ft=/srv/adapters/ft", f"llama-sql=/models/adapters/org--sql-lora/{SHA}"]
    assert args[args.index("--max-loras") + 1] == "2" and args[args.index("--max-lora-rank") + 1] == "16"
    assert "--enable-lora" in args
    # The download init container fetches the model and the hf: adapter; the server only reads.
    download = server["init_containers"][0]
    env = {e["name"]: e.get("value") for e in download["env"]}
    assert env["LLM_MODEL_REPO"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert json.loads(env["LLM_ADAPTERS"]) == [{
        "name": "llama-sql", "repo": "org/sql-lora", "revision": SHA, "dir": f"/models/adapters/org--sql-lora/{SHA}",
        "marker": f"/models/.llmops/complete/adapters/org--sql-lora@{SHA}"}]
    assert {"name": "model-cache", "mountPath": "/models", "readOnly": True} in server["volume_mounts"]
    assert {"name": "models", "mountPath": "/srv", "readOnly": True} in server["volume_mounts"]
    assert server["annotations"]["llmops.platform/adapters"] == (
        f"tiny-chat-ft=path:/srv/adapters/ft,llama-sql=hf:org/sql-lora@{SHA}")


def test_k8s_path_model_with_an_hf_adapter_gets_the_cache_and_the_download_only_for_it():
    on_claim = {**GPU, "kubernetes": {**K8S, "path_volume_claim": "models"}}
    model = normalize_models([{"name": "own", "source": "path:/storage/own", "adapters": [SQL]}], device="gpu")[0]
    server = k8s_server(model, on_claim)
    env = {e["name"] for e in server["init_containers"][0]["env"]}
    assert "LLM_ADAPTERS" in env and "LLM_MODEL_REPO" not in env
    assert {v["name"] for v in server["volumes"]} >= {"models", "model-cache", "download-script"}
    assert {"name": "model-cache", "mountPath": "/models", "readOnly": True} in server["volume_mounts"]
    assert "HF_HUB_CACHE" not in server["env"]  # the adapter is a plain directory; the model is on the claim


def test_k8s_path_adapter_off_the_claim_names_the_field():
    with pytest.raises(ServerError) as err:
        k8s_server(hf(adapters=[FT]), GPU)
    assert err.value.field == "llm_models[llama].adapters[0].source"
    assert "vllm_k8s_path_volume_claim (unset)" in str(err.value)


def test_the_pod_with_adapters_validates_in_a_deployment():
    on_claim = {**GPU, "kubernetes": {**K8S, "path_volume_claim": "models", "path_volume_mount": "/srv"}}
    server = k8s_server(hf(adapters=[FT, {**SQL, "name": "llama-sql"}]), on_claim)
    labels = {"app": "x"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llama", "namespace": "ns"},
                  "spec": {"selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels, **server["pod"]["metadata"]},
                                        "spec": server["pod"]["spec"]}}}
    assert validate_object(deployment) == []


def test_the_filter_passes_resolved_adapters():
    from ansible_collections.llmops.platform.plugins.filter.vllm_server import vllm_server

    argv = vllm_server(tiny_chat(FT), LOCAL, model_dir="/m", adapters={"tiny-chat-ft": "/a", "other": "/b"},
                       adapter_ranks={"tiny-chat-ft": 64, "other": 8})["argv"]
    assert argv[-2:] == ["--lora-modules", "tiny-chat-ft=/a"] and argv[argv.index("--max-lora-rank") + 1] == "64"
