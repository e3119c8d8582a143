"""On the kubernetes target the model download init container reads the Hub API of the offline
mirror (HF_ENDPOINT) when platform_mirror_url is set (vllm role: vllm_server_target.kubernetes.hf_endpoint)."""
from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.vllm_k8s_pod import k8s_server

K8S = {
    "image": "docker.io/vllm/vllm-openai:v0.32.0", "image_pull_policy": "IfNotPresent", "image_pull_secrets": [],
    "port": 8000, "model_cache_claim": "llm-model-cache", "model_cache_mount": "/models",
    "path_volume_claim": "", "path_volume_mount": "/storage", "hf_token_secret": "llm-hf-token",
    "run_as_user": 1000, "resources": {"requests": {"cpu": "2", "memory": "8Gi"}}, "shm_size": "2Gi",
    "startup_timeout_s": 1800, "readiness_period_s": 5, "liveness_period_s": 30, "liveness_timeout_s": 10,
    "liveness_failure_threshold": 6, "prestop_sleep_s": 15, "termination_grace_s": 120, "node_selector": {},
    "gpu_node_selector": {}, "gpu_tolerations": [],
}
MODEL = normalize_models([{"name": "llama", "source": "hf:org/model@" + "0" * 40, "gpus": 1}], device="gpu")[0]


def download_env(kubernetes):
    server = k8s_server(MODEL, {"kind": "kubernetes", "device": "gpu", "kvcache_space_gib": 1, "kubernetes": kubernetes})
    (download,) = [c for c in server["init_containers"] if c["name"] == "model-download"]
    return {e["name"]: e.get("value") for e in download["env"]}, server


def test_download_container_uses_the_mirror_hub_api():
    env, server = download_env({**K8S, "hf_endpoint": "http://10.10.0.5:8080/hf"})
    assert env["HF_ENDPOINT"] == "http://10.10.0.5:8080/hf"
    # Only the download reads the Hub: the server itself stays offline (HF_HUB_OFFLINE).
    assert "HF_ENDPOINT" not in server["env"]


def test_without_a_mirror_nothing_changes():
    assert "HF_ENDPOINT" not in download_env({**K8S, "hf_endpoint": ""})[0]
    assert "HF_ENDPOINT" not in download_env(K8S)[0]  # callers that predate the mirror omit the key
