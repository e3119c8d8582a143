"""The local target's Prometheus and Alertmanager configs, checked by promtool and amtool
themselves, and the receivers for both targets (URLs only where the local process reads them)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml
from rule_files import run_promtool, write_rules

from ansible_collections.llmops.platform.plugins.module_utils.inventory import expand_replicas, normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.monitoring import local_config, receivers, rules

MODELS = [{"name": "chat", "source": "generated:tiny-llama", "replicas": 2},
          {"name": "code", "source": "generated:tiny-llama", "replicas": 1}]


def _replicas():
    return expand_replicas(normalize_models(MODELS, {}, 8100, 10, "cpu", False))


def test_every_replica_the_router_and_the_gateway_are_targets_with_the_kubernetes_labels():
    targets = local_config.scrape_targets("llm-platform", _replicas(), {"host": "127.0.0.1", "port": 8000, "name": "router"},
                                          {"host": "127.0.0.1", "port": 8080, "name": "gateway"})
    assert [g["targets"] for g in targets["vllm"]] == [["127.0.0.1:8100"], ["127.0.0.1:8101"], ["127.0.0.1:8110"]]
    assert targets["vllm"][1]["labels"] == {"namespace": "llm-platform", "pod": "vllm-chat-1", "model": "chat", "replica": "1"}
    assert targets["llm-router"] == [{"targets": ["127.0.0.1:8000"], "labels": {"namespace": "llm-platform", "pod": "router"}}]
    assert targets["llm-gateway"][0]["targets"] == ["127.0.0.1:8080"]
    # The rules select exactly these job names.
    assert rules.JOB_VLLM in targets and rules.JOB_GATEWAY in targets
    assert "llm-router" in targets and "llm-router" .startswith(rules.JOB_ROUTER_RE.rstrip(".*"))


@pytest.mark.parametrize("interval, timeout", [("2s", "2s"), ("15s", "10s"), ("1m", "10s")])
def test_prometheus_config_passes_promtool(tmp_path, interval, timeout):
    rule_file, _ = write_rules(str(tmp_path))
    targets = local_config.scrape_targets("llm-platform", _replicas(), None, None)
    (tmp_path / "targets").mkdir()
    for job, groups in targets.items():
        (tmp_path / "targets" / f"{job}.json").write_text(json.dumps(groups))
    config = local_config.prometheus_config(scrape_interval=interval, evaluation_interval=interval, rule_file=rule_file,
                                            target_dir=str(tmp_path / "targets"), alertmanager="127.0.0.1:9093",
                                            self_address="127.0.0.1:9090")
    assert config["global"]["scrape_timeout"] == timeout
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run_promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert {c["job_name"] for c in config["scrape_configs"]} == {"vllm", "llm-router", "llm-gateway", "prometheus", "alertmanager"}


def _amtool(tmp_path, config) -> subprocess.CompletedProcess:
    amtool = shutil.which("amtool")
    assert amtool, "amtool is missing: `make test` installs Debian's prometheus-alertmanager"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False)


def test_alertmanager_config_routes_the_platform_alerts_to_every_webhook(tmp_path):
    names = rules.alert_names(rules.rule_groups())
    hooks = receivers.local_receivers([{"name": "oncall", "webhook_url": "http://127.0.0.1:9999/hook"},
                                       {"name": "audit", "webhook_url": "https://example.invalid/x", "send_resolved": False}])
    config = local_config.alertmanager_config(hooks, names, group_wait="1s", group_interval="2s", repeat_interval="1h")
    result = _amtool(tmp_path, config)
    assert result.returncode == 0, result.stdout + result.stderr
    routes = config["route"]["routes"]
    assert [r["receiver"] for r in routes] == ["oncall", "audit"] and all(r["continue"] for r in routes)
    assert "VLLMReplicaDown" in routes[0]["matchers"][0]
    assert config["receivers"][2]["webhook_configs"][0] == {"url": "https://example.invalid/x", "send_resolved": False, "max_alerts": 0}


def test_no_receivers_is_a_valid_ui_only_config(tmp_path):
    config = local_config.alertmanager_config([], ["A"], group_wait="30s", group_interval="5m", repeat_interval="4h")
    assert _amtool(tmp_path, config).returncode == 0
    assert config["receivers"] == [{"name": "platform-ui-only"}]


@pytest.mark.parametrize("entry, message", [
    ({"name": "Oncall", "webhook_url": "http://x"}, r"\[0\]\.name"),
    ({"name": "oncall"}, r"\[0\]\.webhook_url: the local target needs"),
    ({"name": "oncall", "webhook_url": "ftp://x"}, "webhook_url"),
    ({"name": "oncall", "webhook_url": "http://x", "urls": []}, "unknown key"),
])
def test_bad_local_receivers_name_the_field(entry, message):
    with pytest.raises(ValueError, match=message):
        receivers.local_receivers([entry])


def test_duplicate_receiver_names_are_refused():
    with pytest.raises(ValueError, match="used twice"):
        receivers.local_receivers([{"name": "a", "webhook_url": "http://x"}, {"name": "a", "webhook_url": "http://y"}])


def test_kubernetes_receivers_reference_secrets_and_never_carry_urls():
    obj = receivers.alertmanager_config_object(
        [{"name": "oncall", "webhook_url_secret": {"name": "alert-webhooks", "key": "oncall"}}], ["VLLMReplicaDown", "RouterDown"],
        "monitoring", labels={"app.kubernetes.io/part-of": "llmops"}, group_wait="30s", group_interval="5m", repeat_interval="4h")
    assert obj["kind"] == "AlertmanagerConfig" and obj["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    hook = obj["spec"]["receivers"][1]["webhookConfigs"][0]
    assert hook == {"urlSecret": {"name": "alert-webhooks", "key": "oncall"}, "sendResolved": True}
    assert obj["spec"]["route"]["matchers"] == [{"name": "alertname", "matchType": "=~", "value": "VLLMReplicaDown|RouterDown"}]
    assert "http" not in json.dumps(obj)
    with pytest.raises(ValueError, match="webhook_url_secret.*instead"):
        receivers.alertmanager_config_object([{"name": "x", "webhook_url": "https://hooks.example/t0ken"}], ["A"], "monitoring",
                                             labels={}, group_wait="1s", group_interval="1s", repeat_interval="1h")
    with pytest.raises(ValueError, match="needs {name: SECRET, key: KEY}"):
        receivers.alertmanager_config_object([{"name": "x", "webhook_url_secret": {"name": "s"}}], ["A"], "monitoring",
                                             labels={}, group_wait="1s", group_interval="1s", repeat_interval="1h")


def test_local_state_file_names_are_what_print_endpoints_reads():
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts", "print_endpoints.py")).read()
    assert '"monitoring.json"' in text and "prometheus_url" in text
