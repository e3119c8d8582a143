"""Alert receivers (`monitoring_alertmanager_receivers`) for both targets.

One entry per receiver: `name`, `send_resolved` (default true) and where its webhook is:
- local target: `webhook_url` (written only into Alertmanager's own 0600 config file, in a
  no_log task; Alertmanager 0.25 has no url_file);
- kubernetes target: `webhook_url_secret: {name, key}`, a reference to a Secret in the
  monitoring namespace. The URL itself is never rendered: the AlertmanagerConfig object
  carries the reference and the Prometheus Operator reads the Secret.
"""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KEYS = {"name", "webhook_url", "webhook_url_secret", "send_resolved", "max_alerts"}
UI_ONLY = "platform-ui-only"


def _check(receivers: list[Any]) -> list[dict]:
    seen = set()
    for index, entry in enumerate(receivers):
        field = f"monitoring_alertmanager_receivers[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{field}: must be a mapping with name and webhook_url or webhook_url_secret")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise ValueError(f"{field}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name) or name == UI_ONLY:
            raise ValueError(f"{field}.name: {name!r} must be a lowercase DNS label (a-z, 0-9, -), not {UI_ONLY}")
        if name in seen:
            raise ValueError(f"{field}.name: {name!r} is used twice")
        seen.add(name)
    return receivers


def local_receivers(receivers: list[Any]) -> list[dict]:
    out = []
    for index, entry in enumerate(_check(receivers)):
        url = entry.get("webhook_url")
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ValueError(
                f"monitoring_alertmanager_receivers[{index}].webhook_url: the local target needs an http(s) URL "
                "(webhook_url_secret is for the kubernetes target)"
            )
        out.append(
            {
                "name": entry["name"],
                "url": url,
                "send_resolved": entry.get("send_resolved", True),
                "max_alerts": entry.get("max_alerts", 0),
            }
        )
    return out


def alertmanager_config_object(
    receivers: list[Any],
    alert_names: list[str],
    namespace: str,
    *,
    labels: dict,
    group_wait: str,
    group_interval: str,
    repeat_interval: str,
) -> dict:
    """An AlertmanagerConfig (monitoring.coreos.com/v1alpha1) routing the platform's alerts to
    webhooks whose URLs stay in Secrets."""
    entries = []
    for index, entry in enumerate(_check(receivers)):
        field = f"monitoring_alertmanager_receivers[{index}]"
        if "webhook_url" in entry:
            raise ValueError(
                f"{field}.webhook_url: on the kubernetes target give webhook_url_secret "
                "({name: SECRET, key: KEY}) instead; URLs are never rendered into manifests"
            )
        ref = entry.get("webhook_url_secret")
        if not (
            isinstance(ref, dict)
            and set(ref) == {"name", "key"}
            and all(isinstance(v, str) and v for v in ref.values())
        ):
            raise ValueError(f"{field}.webhook_url_secret: needs {{name: SECRET, key: KEY}} of a Secret in {namespace}")
        config: dict[str, Any] = {
            "urlSecret": {"name": ref["name"], "key": ref["key"]},
            "sendResolved": bool(entry.get("send_resolved", True)),
        }
        if entry.get("max_alerts"):
            config["maxAlerts"] = int(entry["max_alerts"])
        entries.append({"name": entry["name"], "webhookConfigs": [config]})
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": "llm-platform", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "route": {
                "receiver": UI_ONLY,
                "groupBy": ["alertname", "namespace"],
                "groupWait": group_wait,
                "groupInterval": group_interval,
                "repeatInterval": repeat_interval,
                # Only the platform's own alerts (the chart's default rules keep their routing).
                "matchers": [{"name": "alertname", "matchType": "=~", "value": "|".join(alert_names)}],
                "routes": [{"receiver": e["name"], "continue": True} for e in entries],
            },
            "receivers": [{"name": UI_ONLY}] + entries,
        },
    }
