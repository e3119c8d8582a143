"""The config document the router role renders from llm_router + llm_models."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import expand_replicas, normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.router_config import (
    RouterConfigError,
    build_router_config,
)
from llmops_router.config import parse_config

MODELS = normalize_models([
    {"name": "chat", "source": "generated:tiny-llama", "replicas": 2},
    {"name": "code", "source": "generated:tiny-llama", "replicas": 1, "port": 8200},
    {"name": "idle", "source": "generated:tiny-llama", "replicas": 0},
])


def build(settings=None):
    return build_router_config(MODELS, settings, expand_replicas(MODELS), "127.0.0.1", 8000)


def test_replica_urls_follow_the_inventory_ports_and_the_router_reads_it():
    cfg = build({"policy": "round_robin", "poll_interval_s": 0.5, "per_model_policy": {"code": "least_inflight"}})
    assert cfg["models"][0] == {"name": "chat", "replicas": [
        {"name": "vllm-chat-0", "url": "http://127.0.0.1:8100"},
        {"name": "vllm-chat-1", "url": "http://127.0.0.1:8101"}]}
    assert cfg["models"][1]["replicas"] == [{"name": "vllm-code-0", "url": "http://127.0.0.1:8200"}]
    assert cfg["models"][2] == {"name": "idle", "replicas": []}  # listed: 503, not 404
    parsed = parse_config(cfg)
    assert parsed.policy == "round_robin" and parsed.poll_interval_s == 0.5
    assert parsed.policy_for("code") == "least_inflight" and parsed.policy_for("chat") == "round_robin"
    assert parsed.port == 8000


def test_defaults_are_queue_aware_every_second():
    cfg = build()
    assert (cfg["policy"], cfg["poll_interval_s"]) == ("queue_aware", 1)


@pytest.mark.parametrize("settings,field", [
    ({"policy": "fastest"}, "llm_router.policy"),
    ({"policy": "kube_proxy"}, "llm_router.policy"),
    ({"poll_interval_s": 0}, "llm_router.poll_interval_s"),
    ({"pol": "x"}, "llm_router.pol"),
    ({"per_model_policy": {"nope": "round_robin"}}, "llm_router.per_model_policy.nope"),
    ({"per_model_policy": {"chat": "bogus"}}, "llm_router.per_model_policy.chat"),
])
def test_bad_settings_name_the_field(settings, field):
    with pytest.raises(RouterConfigError, match=field.replace(".", r"\.")):
        build(settings)


def test_each_replica_carries_its_vllm_batch_size_for_queue_aware():
    models = normalize_models([{"name": "chat", "source": "generated:tiny-llama", "replicas": 2,
                                "vllm_args": {"max_num_seqs": 8},
                                "replica_vllm_args": [{"max_num_seqs": 2}]}])
    cfg = build_router_config(models, {"capacity_ttl_s": 30}, expand_replicas(models), "127.0.0.1", 8000)
    assert [r["max_num_seqs"] for r in cfg["models"][0]["replicas"]] == [2, 8]
    parsed = parse_config(cfg)
    assert [r.max_num_seqs for r in parsed.models[0].replicas] == [2, 8] and parsed.capacity_ttl_s == 30


def test_prefix_aware_and_its_settings_pass_through():
    cfg = build({"policy": "prefix_aware", "prefix_block_chars": 64, "prefix_max_entries": 5000,
                 "prefix_ttl_s": 60, "prefix_weight": 2, "prefix_max_imbalance": 1, "prefix_max_blocks": 64,
                 "per_model_policy": {"code": "prefix_aware"}})
    parsed = parse_config(cfg)
    assert parsed.policy == "prefix_aware" and parsed.policy_for("code") == "prefix_aware"
    assert (parsed.prefix_block_chars, parsed.prefix_max_entries, parsed.prefix_ttl_s) == (64, 5000, 60)
    assert (parsed.prefix_weight, parsed.prefix_max_imbalance, parsed.prefix_max_blocks) == (2, 1, 64)


ADAPTED = normalize_models([
    {"name": "tiny-chat", "source": "generated:tiny-llama", "replicas": 2,
     "adapters": [{"name": "tiny-chat-ft", "source": "path:/srv/ft"}, {"name": "tiny-chat-sql", "source": "hf:o/sql"}]},
    {"name": "code", "source": "generated:tiny-llama", "port": 8200},
])


def test_adapters_route_to_their_models_replicas_with_their_own_or_the_models_policy():
    cfg = build_router_config(ADAPTED, {"policy": "queue_aware", "per_model_policy": {
        "tiny-chat": "round_robin", "tiny-chat-sql": "prefix_aware"}}, expand_replicas(ADAPTED), "127.0.0.1", 8000)
    assert cfg["models"][0] == {"name": "tiny-chat", "policy": "round_robin", "replicas": [
        {"name": "vllm-tiny-chat-0", "url": "http://127.0.0.1:8100"},
        {"name": "vllm-tiny-chat-1", "url": "http://127.0.0.1:8101"}],
        "adapters": [{"name": "tiny-chat-ft"}, {"name": "tiny-chat-sql", "policy": "prefix_aware"}]}
    assert "adapters" not in cfg["models"][1]
    parsed = parse_config(cfg)
    assert parsed.policy_for("tiny-chat-ft") == "round_robin" and parsed.policy_for("tiny-chat-sql") == "prefix_aware"
    with pytest.raises(RouterConfigError, match=r"llm_router\.per_model_policy\.nope: no such model or adapter"):
        build_router_config(ADAPTED, {"per_model_policy": {"nope": "round_robin"}}, [], "127.0.0.1", 8000)
    with pytest.raises(RouterConfigError, match=r"llm_router\.per_model_policy\.tiny-chat-ft: 'x' is not a policy"):
        build_router_config(ADAPTED, {"per_model_policy": {"tiny-chat-ft": "x"}}, [], "127.0.0.1", 8000)


def test_kubernetes_router_entries_carry_adapters_and_per_model_policy():
    from ansible_collections.llmops.platform.plugins.filter.k8s_serving import router_k8s_models

    entries = router_k8s_models(ADAPTED, "ns", 8000, "cluster.local", {"code": "least_inflight"})
    assert entries[0]["adapters"] == [{"name": "tiny-chat-ft"}, {"name": "tiny-chat-sql"}]
    assert entries[0]["discovery"]["host"] == "tiny-chat-replicas.ns.svc.cluster.local"
    assert entries[1]["policy"] == "least_inflight" and "adapters" not in entries[1]
    parsed = parse_config({"models": entries})
    assert parsed.policy_for("tiny-chat-sql") == "queue_aware" and parsed.policy_for("code") == "least_inflight"
