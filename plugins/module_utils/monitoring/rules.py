"""The platform's Prometheus recording and alert rules: one source for both targets.

`rule_groups(settings)` returns the `groups:` list of a Prometheus rule file. The kubernetes
target wraps it in a PrometheusRule (roles/monitoring/templates/rules.yaml.j2), the local
target writes it as a plain rule file for Debian's Prometheus; the promtool unit tests
(tests/unit/monitoring/promtool/) run against exactly this output.

Every series is selected by `namespace`: on Kubernetes it is the pod's namespace, on the local
target the scrape config gives every replica, router and gateway the same label, so one rule
text works on both. Only current vLLM metric names are used (files/metric_names.yml);
VLLMMetricsMissing fires for a replica that is scraped but exports an older generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Jobs as both targets name them: the PodMonitor's and ServiceMonitors' jobLabel
# (app.kubernetes.io/name) on Kubernetes, the scrape job names of the local Prometheus.
JOB_VLLM = "vllm"
JOB_ROUTER_RE = "llm-router.*"  # compare.yml's per-arm routers are llm-router-<arm>
JOB_GATEWAY = "llm-gateway"


class RuleSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class RuleSettings:
    """Thresholds and durations (the role's monitoring_alert_* variables)."""

    namespace: str = "llm-platform"
    target_down_for: str = "2m"
    pod_not_ready_for: str = "15m"
    queue_waiting: float = 10
    queue_for: str = "5m"
    kv_cache_usage: float = 0.9
    kv_cache_for: str = "10m"
    error_ratio: float = 0.05
    error_for: str = "5m"
    metrics_missing_for: str = "10m"
    gpu_memory_usage: float = 0.97
    gpu_memory_for: str = "10m"
    gpu_temp_c: float = 85
    gpu_temp_for: str = "10m"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RuleSettings":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise RuleSettingsError(f"unknown rule setting(s) {unknown}; known: {sorted(known)}")
        clean: dict[str, Any] = {}
        for name, value in values.items():
            default = known[name].default
            if isinstance(default, str) and name != "namespace":
                if not isinstance(value, str) or not DURATION.match(value):
                    raise RuleSettingsError(
                        f"monitoring_alert_{name}: {value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h)"
                    )
                clean[name] = value
            elif name == "namespace":
                if not isinstance(value, str) or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value):
                    raise RuleSettingsError(f"namespace {value!r} is not a Kubernetes namespace name")
                clean[name] = value
            else:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise RuleSettingsError(f"monitoring_alert_{name}: {value!r} is not a number") from None
                if number < 0:
                    raise RuleSettingsError(f"monitoring_alert_{name}: {value!r} must not be negative")
                clean[name] = number
        return cls(**clean)


def _num(value: float) -> str:
    """PromQL literal: 10.0 -> 10, 0.9 -> 0.9."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _tmpl(expr: str) -> str:
    """A Prometheus alert template (kept apart from Python's and Jinja's braces)."""
    return "{{ " + expr + " }}"


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, description: str, action: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        # description: what it means; action: the first thing to do.
        "annotations": {"summary": summary, "description": description, "action": action},
    }


def recording_rules(s: RuleSettings) -> list[dict]:
    ns = f'namespace="{s.namespace}"'
    return [
        {
            "record": "model:vllm_requests_running:sum",
            "expr": f"sum by (namespace, model_name) (vllm:num_requests_running{{{ns}}})",
        },
        {
            "record": "model:vllm_requests_waiting:sum",
            "expr": f"sum by (namespace, model_name) (vllm:num_requests_waiting{{{ns}}})",
        },
        {
            "record": "model:vllm_generation_tokens:rate1m",
            "expr": f"sum by (namespace, model_name) (rate(vllm:generation_tokens_total{{{ns}}}[1m]))",
        },
        {
            "record": "model:vllm_time_to_first_token_seconds:p95_5m",
            "expr": (
                "histogram_quantile(0.95, sum by (namespace, model_name, le) "
                f"(rate(vllm:time_to_first_token_seconds_bucket{{{ns}}}[5m])))"
            ),
        },
        {
            "record": "model:vllm_e2e_request_latency_seconds:p95_5m",
            "expr": (
                "histogram_quantile(0.95, sum by (namespace, model_name, le) "
                f"(rate(vllm:e2e_request_latency_seconds_bucket{{{ns}}}[5m])))"
            ),
        },
        # Share of finished requests that ended in an error (vLLM answers those with HTTP 500).
        {
            "record": "model:vllm_request_errors:ratio_rate5m",
            "expr": (
                'sum by (namespace, model_name) '
                f'(rate(vllm:request_success_total{{{ns}, finished_reason="error"}}[5m]))'
                f" / sum by (namespace, model_name) (rate(vllm:request_success_total{{{ns}}}[5m]))"
            ),
        },
        # Share of router answers that were 5xx (503: no healthy replica; 502/504: upstream failed).
        {
            "record": "model:llmops_router_requests_5xx:ratio_rate5m",
            "expr": (
                f'sum by (namespace, model) (rate(llmops_router_requests_total{{{ns}, status=~"5.."}}[5m]))'
                f" / sum by (namespace, model) (rate(llmops_router_requests_total{{{ns}}}[5m]))"
            ),
        },
    ]


def serving_alerts(s: RuleSettings) -> list[dict]:
    ns = f'namespace="{s.namespace}"'
    return [
        _alert(
            "VLLMReplicaDown",
            f'up{{{ns}, job="{JOB_VLLM}"}} == 0',
            s.target_down_for,
            "warning",
            f"vLLM replica {_tmpl('$labels.pod')} ({_tmpl('$labels.model')}) does not answer /metrics",
            "Prometheus cannot scrape this replica: the process exited, hangs, or is restarting. "
            "The router stops sending it requests, so the model runs on fewer replicas.",
            "Read the replica's log (local: platform_log_dir/<pod>.log; Kubernetes: kubectl logs "
            "--previous) for the exit reason; the supervisor or the kubelet restarts it.",
        ),
        _alert(
            "VLLMPodNotReady",
            (
                f'(kube_pod_status_ready{{{ns}, condition="true"}} == 0)'
                " * on(namespace, pod) group_left(label_llmops_platform_model)"
                f' kube_pod_labels{{{ns}, label_app_kubernetes_io_name="vllm"}}'
            ),
            s.pod_not_ready_for,
            "warning",
            f"vLLM pod {_tmpl('$labels.pod')} ({_tmpl('$labels.label_llmops_platform_model')}) "
            f"not ready for {s.pod_not_ready_for}",
            "Kubernetes only (kube-state-metrics): the pod is still loading weights, stuck downloading, "
            "or failing /health. It receives no traffic meanwhile.",
            "kubectl describe pod (events: image pull, GPU scheduling), then the model-download init "
            "container's and the vllm container's logs.",
        ),
        _alert(
            "VLLMQueueDepthHigh",
            f"sum by (namespace, model_name) (vllm:num_requests_waiting{{{ns}}}) > {_num(s.queue_waiting)}",
            s.queue_for,
            "warning",
            f"{_tmpl('$labels.model_name')}: {_tmpl('$value')} requests waiting for {s.queue_for}",
            "Demand exceeds the replicas' batch capacity: requests wait before vLLM schedules them, "
            "so time to first token grows.",
            "Add replicas (llm_models[].replicas, or vllm_k8s_autoscaling) or raise max_num_seqs if "
            "the KV cache has room.",
        ),
        _alert(
            "VLLMKVCacheNearlyFull",
            f"max by (namespace, model_name, pod) (vllm:kv_cache_usage_perc{{{ns}}}) > {_num(s.kv_cache_usage)}",
            s.kv_cache_for,
            "warning",
            f"{_tmpl('$labels.pod')}: KV cache {_tmpl('$value | humanizePercentage')} full",
            "Requests queue or get preempted (recomputed) when the KV cache is full.",
            "Check vllm:num_preemptions_total; lower max_num_seqs or max_model_len, give the cache "
            "more memory, or add replicas.",
        ),
        _alert(
            "VLLMErrorRate",
            f"model:vllm_request_errors:ratio_rate5m{{{ns}}} > {_num(s.error_ratio)}",
            s.error_for,
            "critical",
            f"{_tmpl('$labels.model_name')}: {_tmpl('$value | humanizePercentage')} of requests end in errors",
            "vLLM finished these requests with reason error (clients got HTTP 500).",
            "Read the replicas' logs around the start of the alert (engine errors, out of memory).",
        ),
        _alert(
            "VLLMMetricsMissing",
            (
                f'up{{{ns}, job="{JOB_VLLM}"}} == 1'
                f" unless on(namespace, pod) (vllm:num_requests_running{{{ns}}}"
                f" and on(namespace, pod) vllm:kv_cache_usage_perc{{{ns}}})"
            ),
            s.metrics_missing_for,
            "warning",
            f"{_tmpl('$labels.pod')} is scraped but exports no vllm:num_requests_running / vllm:kv_cache_usage_perc",
            "This vLLM version names its metrics differently (older releases had another name for the "
            "KV-cache gauge): dashboards, alerts and autoscaling read nothing for it.",
            "Compare the replica's /metrics with roles/monitoring/files/metric_names.yml; align the "
            "vLLM version (platform_versions) or the catalog and the rules.",
        ),
        _alert(
            "RouterErrorRate",
            f"model:llmops_router_requests_5xx:ratio_rate5m{{{ns}}} > {_num(s.error_ratio)}",
            s.error_for,
            "critical",
            f"Router: {_tmpl('$value | humanizePercentage')} of {_tmpl('$labels.model')} requests fail with 5xx",
            "Clients of this model get 503 (no healthy replica) or 502/504 (upstream failed).",
            "Check llmops_router_replica_healthy and llmops_router_upstream_errors_total by replica, "
            "then those replicas' logs.",
        ),
        _alert(
            "RouterDown",
            f'up{{{ns}, job=~"{JOB_ROUTER_RE}"}} == 0',
            s.target_down_for,
            "critical",
            f"Router {_tmpl('$labels.job')} ({_tmpl('$labels.instance')}) does not answer /metrics",
            "The router is down or hung: every request through it (and the gateway) fails.",
            "Read the router's log (local: platform_log_dir/router.log; Kubernetes: kubectl logs "
            "deploy/llm-router) and its config.",
        ),
        _alert(
            "GatewayDown",
            f'up{{{ns}, job="{JOB_GATEWAY}"}} == 0',
            s.target_down_for,
            "critical",
            f"Gateway {_tmpl('$labels.instance')} does not answer /metrics",
            "The OpenAI front door and the chat page are down for every client.",
            "Read the gateway's log (local: platform_log_dir/gateway.log; Kubernetes: kubectl logs "
            "deploy/llm-gateway).",
        ),
    ]


def gpu_alerts(s: RuleSettings) -> list[dict]:
    return [
        _alert(
            "GPUMemoryNearlyFull",
            f"DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > {_num(s.gpu_memory_usage)}",
            s.gpu_memory_for,
            "warning",
            f"GPU {_tmpl('$labels.gpu')} on {_tmpl('$labels.Hostname')}: "
            f"memory {_tmpl('$value | humanizePercentage')} used",
            "vLLM preallocates gpu_memory_utilization of the GPU; above that something else uses it, "
            "and an out-of-memory error is close.",
            "nvidia-smi on the node: find the other process; check the pod's gpu_memory_utilization.",
        ),
        _alert(
            "GPUTemperatureHigh",
            f"DCGM_FI_DEV_GPU_TEMP > {_num(s.gpu_temp_c)}",
            s.gpu_temp_for,
            "warning",
            f"GPU {_tmpl('$labels.gpu')} on {_tmpl('$labels.Hostname')} at {_tmpl('$value')} C",
            "Sustained heat throttles clocks (and tokens/s).",
            "Check DCGM_FI_DEV_SM_CLOCK for throttling and the node's cooling.",
        ),
    ]


def rule_groups(settings: RuleSettings | dict[str, Any] | None = None) -> list[dict]:
    s = settings if isinstance(settings, RuleSettings) else RuleSettings.from_dict(dict(settings or {}))
    return [
        {"name": "llm-serving-records", "rules": recording_rules(s)},
        {"name": "llm-serving", "rules": serving_alerts(s)},
        {"name": "llm-gpu", "rules": gpu_alerts(s)},
    ]


def alert_names(groups: list[dict]) -> list[str]:
    return [r["alert"] for g in groups for r in g["rules"] if "alert" in r]


def record_names(groups: list[dict]) -> list[str]:
    return [r["record"] for g in groups for r in g["rules"] if "record" in r]
