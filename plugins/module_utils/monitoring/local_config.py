"""Configuration of the local target's Prometheus and Alertmanager (Debian's binaries run as
supervised processes on loopback).

Scrape targets come from the same records the serving roles use (`llm_replicas` for vLLM,
router_host/port, gateway_host/port), as file_sd target files: Prometheus re-reads them by
itself, so a changed model list needs no restart. Every target carries the labels the
Kubernetes target gets from its PodMonitor/ServiceMonitors (namespace, pod, model, job), so
the rules, dashboards and the Streamlit view are the same queries on both targets.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.monitoring.rules import (
    JOB_GATEWAY,
    JOB_VLLM,
)

JOB_ROUTER = "llm-router"


def scrape_targets(
    namespace: str, replicas: list[dict], router: dict | None, gateway: dict | None
) -> dict[str, list[dict]]:
    """{job: file_sd target groups}. router/gateway: {'host', 'port', 'name'} or None."""

    def host_port(url_or_host: str, port: Any) -> str:
        return f"{url_or_host}:{int(port)}"

    vllm = [
        {
            "targets": [f"{r['base_url'].split('://', 1)[1]}"],
            "labels": {"namespace": namespace, "pod": r["name"], "model": r["model"], "replica": str(r["index"])},
        }
        for r in replicas
    ]
    out = {JOB_VLLM: vllm}
    for job, spec in ((JOB_ROUTER, router), (JOB_GATEWAY, gateway)):
        out[job] = (
            []
            if not spec
            else [
                {
                    "targets": [host_port(spec["host"], spec["port"])],
                    "labels": {"namespace": namespace, "pod": spec.get("name", job)},
                }
            ]
        )
    return out


def prometheus_config(
    *,
    scrape_interval: str,
    evaluation_interval: str,
    rule_file: str,
    target_dir: str,
    alertmanager: str,
    self_address: str,
) -> dict:
    jobs = [JOB_VLLM, JOB_ROUTER, JOB_GATEWAY]
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "scrape_timeout": _timeout(scrape_interval),
        },
        "rule_files": [rule_file],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [f"{target_dir}/{job}.json"], "refresh_interval": "30s"}],
            }
            for job in jobs
        ]
        + [
            {"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]},
            {"job_name": "alertmanager", "static_configs": [{"targets": [alertmanager]}]},
        ],
    }


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix) and duration[: -len(suffix)].isdigit():
            return int(duration[: -len(suffix)]) * units[suffix]
    raise ValueError(f"{duration!r}: use a single-unit duration such as 15s or 1m")


def _timeout(interval: str) -> str:
    """Prometheus refuses scrape_timeout > scrape_interval; its default 10s breaks a 5s interval."""
    seconds = _seconds(interval)
    return interval if seconds < 10 else "10s"


def alertmanager_config(
    receivers: list[dict], alert_names: list[str], *, group_wait: str, group_interval: str, repeat_interval: str
) -> dict:
    """Route the platform's alerts to every receiver (webhooks on the local target).

    receivers: [{'name', 'url', 'send_resolved'?, 'max_alerts'?}] (URLs resolved already).
    Alerts are grouped by alert name and namespace; with no receiver they stay visible in
    Alertmanager's UI and API only.
    """
    names = [r["name"] for r in receivers]
    if len(set(names)) != len(names):
        raise ValueError(f"monitoring_alert_receivers: names must be unique, got {names}")
    route: dict[str, Any] = {
        "receiver": "platform-ui-only",
        "group_by": ["alertname", "namespace"],
        "group_wait": group_wait,
        "group_interval": group_interval,
        "repeat_interval": repeat_interval,
        "routes": [
            {"receiver": r["name"], "matchers": [f'alertname=~"{"|".join(alert_names)}"'], "continue": True}
            for r in receivers
        ],
    }
    return {
        "route": route,
        "receivers": [{"name": "platform-ui-only"}]
        + [
            {
                "name": r["name"],
                "webhook_configs": [
                    {
                        "url": r["url"],
                        "send_resolved": bool(r.get("send_resolved", True)),
                        "max_alerts": int(r.get("max_alerts", 0)),
                    }
                ],
            }
            for r in receivers
        ],
    }
