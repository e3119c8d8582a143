"""Monitoring filters: the one rule source (module_utils.monitoring.rules) and the local
target's Prometheus/Alertmanager configuration (module_utils.monitoring.local_config)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import local_config, receivers, rules


def monitoring_rule_groups(settings):
    """The `groups:` of the platform's rule file (recording rules and alerts)."""
    try:
        return rules.rule_groups(dict(settings or {}))
    except rules.RuleSettingsError as exc:
        raise AnsibleFilterError(f"Invalid monitoring settings: {exc}") from None


def monitoring_alert_names(groups):
    return rules.alert_names(list(groups))


def monitoring_scrape_targets(replicas, namespace, router=None, gateway=None):
    return local_config.scrape_targets(str(namespace), list(replicas or []), router or None, gateway or None)


def monitoring_prometheus_config(settings):
    try:
        return local_config.prometheus_config(**dict(settings))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"Invalid monitoring settings: {exc}") from None


def monitoring_alertmanager_config(receiver_list, alert_names, settings):
    try:
        resolved = receivers.local_receivers(list(receiver_list or []))
        return local_config.alertmanager_config(resolved, list(alert_names), **dict(settings))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"Invalid monitoring_alertmanager_receivers: {exc}") from None


def monitoring_alertmanager_k8s_config(receiver_list, alert_names, namespace, settings):
    try:
        return receivers.alertmanager_config_object(list(receiver_list or []), list(alert_names), str(namespace),
                                                    **dict(settings))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"Invalid monitoring_alertmanager_receivers: {exc}") from None


class FilterModule:
    def filters(self):
        return {
            "monitoring_rule_groups": monitoring_rule_groups,
            "monitoring_alert_names": monitoring_alert_names,
            "monitoring_scrape_targets": monitoring_scrape_targets,
            "monitoring_prometheus_config": monitoring_prometheus_config,
            "monitoring_alertmanager_config": monitoring_alertmanager_config,
            "monitoring_alertmanager_k8s_config": monitoring_alertmanager_k8s_config,
        }
