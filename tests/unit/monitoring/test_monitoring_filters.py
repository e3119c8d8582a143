"""The role's filters: bad inventory values fail naming the variable and the fix."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.filter import monitoring


def test_bad_threshold_names_the_variable():
    with pytest.raises(AnsibleFilterError, match=r"monitoring_alert_queue_for: '5 minutes' is not a Prometheus duration"):
        monitoring.monitoring_rule_groups({"queue_for": "5 minutes"})


def test_local_receiver_without_url_names_the_field():
    with pytest.raises(AnsibleFilterError, match=r"monitoring_alertmanager_receivers\[0\]\.webhook_url"):
        monitoring.monitoring_alertmanager_config([{"name": "oncall"}], ["A"],
                                                  {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})


def test_kubernetes_receiver_with_a_plain_url_is_refused():
    with pytest.raises(AnsibleFilterError, match="webhook_url_secret"):
        monitoring.monitoring_alertmanager_k8s_config([{"name": "oncall", "webhook_url": "https://x"}], ["A"], "monitoring",
                                                      {"labels": {}, "group_wait": "1s", "group_interval": "1s",
                                                       "repeat_interval": "1h"})


def test_alert_names_and_targets():
    groups = monitoring.monitoring_rule_groups({})
    assert monitoring.monitoring_alert_names(groups)[0] == "VLLMReplicaDown"
    targets = monitoring.monitoring_scrape_targets([], "ns", None, None)
    assert targets == {"vllm": [], "llm-router": [], "llm-gateway": []}
