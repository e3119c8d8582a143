"""Where benchmark traffic goes: each vLLM port locally, the router Service on Kubernetes."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.targets import (
    TargetError,
    benchmark_targets,
)

MODELS = [{"name": "a", "port": 8100, "replicas": 2, "vllm_args": {"max_num_seqs": 8}},
          {"name": "b", "port": 8110, "replicas": 1}, {"name": "off", "port": 8120, "replicas": 0}]


def test_local_target_uses_each_models_port():
    out = benchmark_targets(MODELS, "local", "127.0.0.1")
    assert [(t["name"], t["base_url"]) for t in out] == [("a", "http://127.0.0.1:8100"), ("b", "http://127.0.0.1:8110")]
    assert out[0]["vllm_args"] == {"max_num_seqs": 8}  # provenance travels along


def test_kubernetes_target_goes_through_the_service_never_a_pod_port():
    out = benchmark_targets(MODELS, "kubernetes", "127.0.0.1", "http://llm-router.example:8080/")
    assert {t["base_url"] for t in out} == {"http://llm-router.example:8080"}
    assert all(t["via"] == "service" and str(t["port"]) not in t["base_url"] for t in out)
    with pytest.raises(TargetError, match="benchmark_k8s_url"):
        benchmark_targets(MODELS, "kubernetes", "127.0.0.1", "")
    with pytest.raises(TargetError, match="not an http"):
        benchmark_targets(MODELS, "kubernetes", "127.0.0.1", "llm-router:8080")


def test_no_served_model_is_an_empty_list():
    assert benchmark_targets([], "local", "127.0.0.1") == []
