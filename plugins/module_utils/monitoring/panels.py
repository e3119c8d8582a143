"""The platform's dashboard panels as data: titles, units and PromQL, with template variables.

Two faces read this: `grafana.py` builds the Grafana dashboards from it with Grafana's own
SDK (the JSON under roles/monitoring/files/dashboards/ is its output), and the Streamlit page
(apps/dashboard/pages/) runs the same queries against the local Prometheus. `substitute()`
turns a panel query into plain PromQL for a given variable selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# vLLM series are selected by the namespace, model and pod variables; the router's by model.
_V = 'namespace=~"$namespace", model_name=~"$model", pod=~"$pod"'
_R = 'namespace=~"$namespace", model=~"$model"'
_G = 'Hostname=~"$node", gpu=~"$gpu"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 12
    min: float | None = 0
    max: float | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(...) as Grafana's Prometheus data source takes it


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    filename: str
    tags: tuple[str, ...]
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...] = field(default_factory=tuple)

    def panels(self) -> list[Panel]:
        return [p for row in self.rows for p in row.panels]


def _quantiles(metric: str, by: str, legend: str) -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{_V}}}[$__rate_interval])))",
            f"p{int(float(q) * 100)} {legend}",
        )
        for q in ("0.5", "0.95", "0.99")
    )


VLLM = Board(
    uid="llmops-vllm",
    title="LLM serving: vLLM",
    filename="vllm.json",
    tags=("llmops", "vllm"),
    variables=(
        Variable("namespace", "Namespace", "label_values(vllm:num_requests_running, namespace)"),
        Variable("model", "Model", 'label_values(vllm:num_requests_running{namespace=~"$namespace"}, model_name)'),
        Variable(
            "pod", "Pod", 'label_values(vllm:num_requests_running{namespace=~"$namespace", model_name=~"$model"}, pod)'
        ),
    ),
    rows=(
        Row(
            "Traffic",
            (
                Panel(
                    "Request rate by model",
                    "Finished requests per second (any finish reason).",
                    "reqps",
                    (
                        Query(
                            f"sum by (model_name) (rate(vllm:request_success_total{{{_V}}}[$__rate_interval]))",
                            "{{model_name}}",
                        ),
                    ),
                ),
                Panel(
                    "Request rate by pod",
                    "How evenly the router spreads load over replicas.",
                    "reqps",
                    (Query(f"sum by (pod) (rate(vllm:request_success_total{{{_V}}}[$__rate_interval]))", "{{pod}}"),),
                ),
                Panel(
                    "Generated tokens/s",
                    "Output (and prompt) tokens per second.",
                    "short",
                    (
                        Query(
                            f"sum by (model_name) (rate(vllm:generation_tokens_total{{{_V}}}[$__rate_interval]))",
                            "{{model_name}} output",
                        ),
                        Query(
                            f"sum by (model_name) (rate(vllm:prompt_tokens_total{{{_V}}}[$__rate_interval]))",
                            "{{model_name}} prompt",
                        ),
                    ),
                ),
                Panel(
                    "Finished requests by reason",
                    "stop, length, abort, error.",
                    "reqps",
                    (
                        Query(
                            f"sum by (model_name, finished_reason) "
                            f"(rate(vllm:request_success_total{{{_V}}}[$__rate_interval]))",
                            "{{model_name}} {{finished_reason}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "Time to first token",
                    "TTFT percentiles per model.",
                    "s",
                    _quantiles("vllm:time_to_first_token_seconds", "model_name", "{{model_name}}"),
                    width=8,
                ),
                Panel(
                    "Inter-token latency",
                    "ITL percentiles per model.",
                    "s",
                    _quantiles("vllm:inter_token_latency_seconds", "model_name", "{{model_name}}"),
                    width=8,
                ),
                Panel(
                    "End-to-end latency",
                    "E2E request latency percentiles per model.",
                    "s",
                    _quantiles("vllm:e2e_request_latency_seconds", "model_name", "{{model_name}}"),
                    width=8,
                ),
                Panel(
                    "Queue time p95",
                    "Time requests waited before being scheduled.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, model_name) "
                            f"(rate(vllm:request_queue_time_seconds_bucket{{{_V}}}[$__rate_interval])))",
                            "{{model_name}}",
                        ),
                    ),
                ),
                Panel(
                    "TTFT p95 by pod",
                    "A slow replica shows up here first.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, pod) "
                            f"(rate(vllm:time_to_first_token_seconds_bucket{{{_V}}}[$__rate_interval])))",
                            "{{pod}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Scheduler and KV cache",
            (
                Panel(
                    "Running requests",
                    "Requests in the running batch, per pod.",
                    "short",
                    (Query(f"sum by (pod) (vllm:num_requests_running{{{_V}}})", "{{pod}}"),),
                    width=8,
                ),
                Panel(
                    "Waiting requests (queue)",
                    "Queue depth per pod: what queue-aware routing and autoscaling act on.",
                    "short",
                    (Query(f"sum by (pod) (vllm:num_requests_waiting{{{_V}}})", "{{pod}}"),),
                    width=8,
                ),
                Panel(
                    "KV cache usage",
                    "Fraction of KV-cache blocks in use (1 = full).",
                    "percentunit",
                    (Query(f"max by (pod) (vllm:kv_cache_usage_perc{{{_V}}})", "{{pod}}"),),
                    width=8,
                    max=1,
                ),
                Panel(
                    "Preemptions/s",
                    "KV cache pressure evicting running requests.",
                    "short",
                    (Query(f"sum by (pod) (rate(vllm:num_preemptions_total{{{_V}}}[$__rate_interval]))", "{{pod}}"),),
                ),
                Panel(
                    "Prefix cache hit rate",
                    "Share of prompt tokens served from the prefix cache.",
                    "percentunit",
                    (
                        Query(
                            f"sum by (model_name) (rate(vllm:prefix_cache_hits_total{{{_V}}}[$__rate_interval]))"
                            f" / sum by (model_name) (rate(vllm:prefix_cache_queries_total{{{_V}}}[$__rate_interval]))",
                            "{{model_name}}",
                        ),
                    ),
                    max=1,
                ),
            ),
        ),
        Row(
            "Router",
            (
                Panel(
                    "Router requests by status",
                    "As clients see them (404 unknown model, 503 no healthy replica).",
                    "reqps",
                    (
                        Query(
                            f"sum by (model, status) (rate(llmops_router_requests_total{{{_R}}}[$__rate_interval]))",
                            "{{model}} {{status}}",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Router choices per replica",
                    "Where the policy sends requests.",
                    "reqps",
                    (
                        Query(
                            f"sum by (replica) (rate(llmops_router_replica_choices_total{{{_R}}}[$__rate_interval]))",
                            "{{replica}}",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Router time to first byte p95",
                    "Upstream first byte as the router sees it.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, model) "
                            f"(rate(llmops_router_upstream_first_byte_seconds_bucket{{{_R}}}[$__rate_interval])))",
                            "{{model}}",
                        ),
                    ),
                    width=8,
                ),
            ),
        ),
    ),
)


def _gpu(
    title: str,
    description: str,
    unit: str,
    expr: str,
    max_: float | None = None,
    legend: str = "{{Hostname}} GPU {{gpu}}",
) -> Panel:
    return Panel(title, description, unit, (Query(expr, legend),), max=max_)


GPU = Board(
    uid="llmops-gpu",
    title="LLM serving: GPUs (DCGM)",
    filename="gpu.json",
    tags=("llmops", "gpu", "dcgm"),
    variables=(
        Variable("node", "Node", "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)"),
        Variable("gpu", "GPU", 'label_values(DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"}, gpu)'),
    ),
    rows=(
        Row(
            "GPU",
            (
                _gpu(
                    "GPU utilisation",
                    "Time the GPU was busy (%).",
                    "percent",
                    f"avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{{{_G}}})",
                    100,
                ),
                _gpu(
                    "GPU memory used",
                    "Framebuffer in use; vLLM preallocates gpu_memory_utilization of it.",
                    "percentunit",
                    f"sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED{{{_G}}}) / sum by (Hostname, gpu) "
                    f"(DCGM_FI_DEV_FB_USED{{{_G}}} + DCGM_FI_DEV_FB_FREE{{{_G}}})",
                    1,
                ),
                _gpu(
                    "GPU memory used (MiB)",
                    "Framebuffer used, MiB.",
                    "decmbytes",
                    f"sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED{{{_G}}})",
                ),
                _gpu(
                    "GPU temperature",
                    "Core temperature.",
                    "celsius",
                    f"max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP{{{_G}}})",
                ),
                _gpu(
                    "GPU power",
                    "Board power draw.",
                    "watt",
                    f"sum by (Hostname, gpu) (DCGM_FI_DEV_POWER_USAGE{{{_G}}})",
                ),
                _gpu(
                    "Memory copy utilisation",
                    "Memory bandwidth busy (%).",
                    "percent",
                    f"avg by (Hostname, gpu) (DCGM_FI_DEV_MEM_COPY_UTIL{{{_G}}})",
                    100,
                ),
                _gpu(
                    "SM clock",
                    "Falls when the GPU throttles.",
                    "hertz",
                    f"avg by (Hostname, gpu) (DCGM_FI_DEV_SM_CLOCK{{{_G}}})",
                ),
                _gpu(
                    "GPU use by pod",
                    "Which pod uses which GPU (dcgm-exporter's Kubernetes mapping).",
                    "percent",
                    f'avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{_G}, pod!=""}})',
                    100,
                    "{{namespace}}/{{pod}}",
                ),
                _gpu(
                    "XID errors",
                    "Last XID error code (0: none).",
                    "short",
                    f"max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{{{_G}}})",
                ),
            ),
        ),
    ),
)

BOARDS = (VLLM, GPU)


def substitute(expr: str, values: dict[str, str] | None = None, rate_interval: str = "1m") -> str:
    """Plain PromQL for a panel query: each $variable becomes its selected regex (default
    `.*`, Grafana's "All"), $__rate_interval the given window."""
    values = dict(values or {})
    out = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), ".*"), out)
