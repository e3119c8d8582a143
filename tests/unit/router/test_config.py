"""The router's own config validation names the field to fix."""
import pytest

from llmops_router.config import ConfigError, parse_config

OK_REPLICA = [{"name": "r", "url": "http://127.0.0.1:8100/"}]


def test_defaults_and_trailing_slash():
    cfg = parse_config({"models": [{"name": "m", "replicas": OK_REPLICA}]})
    assert cfg.policy == "queue_aware" and cfg.port == 8000
    assert cfg.metrics_stale_s == 3.0  # 3 x poll_interval_s
    assert cfg.models[0].replicas[0].url == "http://127.0.0.1:8100"


def test_kubernetes_style_discovery_entry_is_read():
    cfg = parse_config({"host": "0.0.0.0", "port": 8080, "models": [{
        "name": "m", "replicas": OK_REPLICA,
        "discovery": {"type": "dns", "host": "m-replicas.ns.svc.cluster.local", "port": 8000, "scheme": "http"}}]})
    assert cfg.models[0].discovery == {"host": "m-replicas.ns.svc.cluster.local", "port": 8000, "scheme": "http"}


@pytest.mark.parametrize("raw,field", [
    ({"models": "x"}, "models"),
    ({"models": [{"replicas": OK_REPLICA}]}, "models[0].name"),
    ({"models": [{"name": "m"}, {"name": "m"}]}, "models[1].name"),
    ({"models": [{"name": "m", "replicas": [{"url": "127.0.0.1:1"}]}]}, "models[0].replicas[0].url"),
    ({"models": [], "policy": "random"}, "policy"),
    ({"models": [{"name": "m", "policy": "x"}]}, "models[0].policy"),
    ({"models": [], "poll_interval_s": "1"}, "poll_interval_s"),
    ({"models": [], "poll_interval_s": 1, "metrics_stale_s": 0.5}, "metrics_stale_s"),
    ({"models": [{"name": "m", "discovery": {"type": "dns", "host": "h"}}]}, "models[0].discovery.port"),
    ({"models": [{"name": "m", "discovery": {"type": "consul"}}]}, "models[0].discovery"),
    ({"models": [{"name": "m", "replicas": [{"url": "http://h:1", "max_num_seqs": 0}]}]},
     "models[0].replicas[0].max_num_seqs"),
    ({"models": [{"name": "m", "max_num_seqs": "16"}]}, "models[0].max_num_seqs"),
    ({"models": [], "assumed_capacity": 0}, "assumed_capacity"),
])
def test_errors_name_the_field(raw, field):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value).startswith(field + ":")


def test_capacity_hints_are_read():
    cfg = parse_config({"models": [{"name": "m", "max_num_seqs": 16, "replicas": [
        {"url": "http://h:1", "max_num_seqs": 2}, {"url": "http://h:2"}]}]})
    model = cfg.models[0]
    assert model.max_num_seqs == 16 and [r.max_num_seqs for r in model.replicas] == [2, None]
    assert cfg.assumed_capacity == 256 and cfg.capacity_ttl_s == 60


def test_adapters_inherit_or_override_the_policy_and_names_stay_unique():
    raw = {"policy": "queue_aware", "models": [
        {"name": "chat", "policy": "round_robin", "replicas": [],
         "adapters": [{"name": "chat-ft"}, {"name": "chat-sql", "policy": "prefix_aware"}]},
        {"name": "code", "replicas": [], "adapters": [{"name": "code-ft"}]}]}
    config = parse_config(raw)
    assert [a.name for a in config.models[0].adapters] == ["chat-ft", "chat-sql"]
    assert config.policy_for("chat-ft") == "round_robin"  # the model's
    assert config.policy_for("chat-sql") == "prefix_aware"  # its own
    assert config.policy_for("code-ft") == "queue_aware"  # the router's
    for adapters, field in [([{"name": "code"}], "models[0].adapters[0].name"),
                            ([{"name": "x"}, {"name": "x"}], "models[0].adapters[1].name"),
                            ([{"name": "x", "policy": "fastest"}], "models[0].adapters[0].policy"),
                            ("x", "models[0].adapters")]:
        bad = {"models": [{**raw["models"][0], "adapters": adapters}, raw["models"][1]]}
        with pytest.raises(ConfigError, match=field.replace(".", r"\.").replace("[", r"\[")):
            parse_config(bad)
