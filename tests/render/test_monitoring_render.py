"""Monitoring layer on the kubernetes target: chart values as data, DCGM, scrape configs,
dashboards and alerts, checked against the metric names vLLM, DCGM and the router export."""
from __future__ import annotations

import copy
import glob
import json
import os
import re
import sys

import k8s_policy as policy
import pytest
import serving_render
import yaml
from k8s_validate import load_documents, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import app_code

ROOT = serving_render.ROOT
ROLE = os.path.join(ROOT, "roles", "monitoring")
CATALOG = yaml.safe_load(open(os.path.join(ROLE, "files", "metric_names.yml")))
ALLOWED = policy.allowed_metric_names(CATALOG)
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]


def _home(name="seed002"):
    return os.path.join(serving_render.render_all()[name], "rendered-0", "monitoring")


@pytest.fixture(scope="module")
def docs():
    return [doc for _, doc in load_documents([os.path.join(_home(), "manifests")])]


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _dashboards() -> dict[str, dict]:
    return {os.path.basename(p): json.load(open(p)) for p in sorted(glob.glob(os.path.join(ROLE, "files", "dashboards", "*.json")))}


def _dashboard_queries(board: dict) -> list[str]:
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            queries.append(var["query"]["query"])
    return queries


def _rule_exprs(docs) -> list[str]:
    return [r["expr"] for r in _find(docs, "PrometheusRule", "llm-platform")["spec"]["groups"] for r in r["rules"]]


@pytest.mark.parametrize("name", ["seed002", "seed000"])
def test_manifests_are_valid_in_1_29_and_current(name):
    assert validate_paths([os.path.join(_home(name), "manifests")]) == []


def test_chart_is_pinned_and_values_are_data():
    release = json.load(open(os.path.join(_home(), "helm", "release.json")))
    assert release["chart_version"] == VERSIONS["kube_prometheus_stack_chart"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["chart_version"])
    values = yaml.safe_load(open(os.path.join(_home(), "helm", "values.yaml")))
    spec = values["prometheus"]["prometheusSpec"]
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                "ruleSelectorNilUsesHelmValues"):
        assert spec[key] is False
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert values["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    assert "llmops.platform/model" in values["kube-state-metrics"]["metricLabelsAllowlist"][0]


MONITORING_KINDS = ("ServiceMonitor", "PodMonitor", "Probe", "ScrapeConfig", "PrometheusRule", "AlertmanagerConfig")


def _namespace_selector(names):
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]}


@pytest.mark.parametrize("name, namespaces", [("seed002", ["monitoring"]),
                                              ("seed000", ["monitoring", "team-observability"])])
def test_prometheus_alertmanager_and_grafana_read_only_the_platforms_namespaces(name, namespaces):
    """The chart's defaults read every namespace: a ServiceMonitor, PrometheusRule or labelled
    ConfigMap anywhere would become a scrape target, an alert or a Grafana dashboard/datasource."""
    values = yaml.safe_load(open(os.path.join(_home(name), "helm", "values.yaml")))
    selector = _namespace_selector(namespaces)
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "probe", "scrapeConfig", "rule"):
        assert spec[f"{kind}NamespaceSelector"] == selector, kind
    assert values["alertmanager"]["alertmanagerSpec"]["alertmanagerConfigNamespaceSelector"] == selector
    sidecar = values["grafana"]["sidecar"]
    assert sidecar["dashboards"]["searchNamespace"] == sidecar["datasources"]["searchNamespace"] == namespaces
    assert "ALL" not in json.dumps(values)
    # The operator watches the release's namespace and the other platform namespaces only.
    assert values["prometheusOperator"]["namespaces"] == {
        "releaseNamespace": True, "additional": [n for n in namespaces if n != "monitoring"]}
    # A Role in Grafana's namespace when that is all it reads; another namespace needs the ClusterRole.
    assert values["grafana"]["rbac"]["namespaced"] is (namespaces == ["monitoring"])
    # Everything the platform renders for them lives where they look.
    docs = [doc for _, doc in load_documents([os.path.join(_home(name), "manifests")])]
    loaded = [d for d in docs if d["kind"] in MONITORING_KINDS
              or d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert {d["kind"] for d in loaded} >= {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}
    assert all(d["metadata"]["namespace"] in namespaces for d in loaded), [
        (d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in loaded]


def test_inventory_values_merge_over_the_base_values():
    values = yaml.safe_load(open(os.path.join(_home("seed000"), "helm", "values.yaml")))
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False


def test_dcgm_exporter_runs_on_gpu_nodes_and_is_scraped(docs):
    ds = _find(docs, "DaemonSet", "dcgm-exporter")
    spec = policy.pod_spec(ds)
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["containers"][0]["image"] == VERSIONS["dcgm_exporter_image"]
    assert policy.image_problems([ds]) == [] and policy.resource_problems([ds]) == []
    assert policy.security_problems(ds, allow_root=True) == []
    monitor = _find(docs, "ServiceMonitor", "dcgm-exporter")
    svc = _find(docs, "Service", "dcgm-exporter")
    assert policy.selector_matches(monitor["spec"]["selector"], svc["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert policy.selector_problems([ds, svc]) == []


def test_every_vllm_pod_and_the_router_are_scraped(docs):
    serving = [doc for _, doc in load_documents([os.path.join(os.path.dirname(_home()), "serving")])]
    pod_monitor = _find(docs, "PodMonitor", "vllm")
    assert pod_monitor["spec"]["namespaceSelector"]["matchNames"] == ["managed"]
    for deployment in policy.by_kind(serving, "Deployment"):
        labels = policy.pod_labels(deployment)
        ports = [p["name"] for p in policy.pod_spec(deployment)["containers"][0]["ports"]]
        if deployment["metadata"]["name"] in ("llm-router", "llm-gateway"):
            assert not policy.selector_matches(pod_monitor["spec"]["selector"], labels)
            continue
        assert policy.selector_matches(pod_monitor["spec"]["selector"], labels)
        assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
    router_monitor = _find(docs, "ServiceMonitor", "llm-router")
    router_svc = next(s for s in policy.by_kind(serving, "Service") if s["metadata"]["name"] == "llm-router")
    assert policy.selector_matches(router_monitor["spec"]["selector"], router_svc["metadata"]["labels"])
    gateway_monitor = _find(docs, "ServiceMonitor", "llm-gateway")
    gateway_svc = next(s for s in policy.by_kind(serving, "Service") if s["metadata"]["name"] == "llm-gateway")
    assert policy.selector_matches(gateway_monitor["spec"]["selector"], gateway_svc["metadata"]["labels"])
    assert gateway_svc["spec"]["ports"][0]["name"] == gateway_monitor["spec"]["endpoints"][0]["port"]
    assert not policy.selector_matches(router_monitor["spec"]["selector"], gateway_svc["metadata"]["labels"])
    # compare.yml's per-arm routers carry the same component label, so they are scraped too.
    arm = {**router_svc["metadata"]["labels"], "app.kubernetes.io/name": "llm-router-managed"}
    assert policy.selector_matches(router_monitor["spec"]["selector"], arm)
    # Model Services carry other labels: the router monitor must not scrape vLLM twice.
    assert not any(policy.selector_matches(router_monitor["spec"]["selector"], s["metadata"]["labels"])
                   for s in policy.by_kind(serving, "Service") if s["metadata"]["name"] != "llm-router")


def test_dashboards_are_provisioned_by_configmap(docs):
    boards = _dashboards()
    assert set(boards) == {"vllm.json", "gpu.json"}
    for name, board in boards.items():
        cm = _find(docs, "ConfigMap", f"grafana-dashboard-llmops-{name[:-5]}")
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][name]) == board
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_promql_extraction_finds_metrics_and_ignores_functions_labels_and_keywords():
    expr = ('histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:time_to_first_token_seconds_bucket'
            '{namespace=~"$namespace", pod=~"x"}[$__rate_interval]))) / on(pod) group_left(model) up unless x_total')
    assert policy.promql_metric_names(expr) == {"vllm:time_to_first_token_seconds_bucket", "up", "x_total"}
    assert policy.promql_metric_names("label_values(DCGM_FI_DEV_GPU_UTIL{Hostname=~\"$node\"}, gpu)") == {"DCGM_FI_DEV_GPU_UTIL"}


def _records(docs) -> set[str]:
    return {r["record"] for g in _find(docs, "PrometheusRule", "llm-platform")["spec"]["groups"]
            for r in g["rules"] if "record" in r}


def test_every_dashboard_and_alert_query_names_a_known_current_metric(docs):
    queries = [q for board in _dashboards().values() for q in _dashboard_queries(board)] + _rule_exprs(docs)
    # Alerts may read the platform's own recording rules (which read catalog metrics themselves).
    allowed = ALLOWED | _records(docs)
    used = set()
    for query in queries:
        names = policy.promql_metric_names(query)
        assert names, f"no metric in {query!r}"
        assert names <= allowed, f"{sorted(names - allowed)} in {query!r} are not in files/metric_names.yml"
        used |= names
    for deprecated in CATALOG["vllm_deprecated"]:
        assert deprecated not in used
    # A stale name is caught: the deprecated KV-cache gauge is not allowed.
    assert "vllm:gpu_cache_usage_perc" not in ALLOWED


def _without_router_code(text: str) -> str:
    """The router's own source ships in a ConfigMap; it reads the deprecated names on purpose
    (old vLLM replicas), which is not the render using them."""
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    if not docs or not all("kind" in d for d in docs):
        return text
    kept = [d for d in docs if not (
        d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-code")
        and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "router")]
    return text if len(kept) == len(docs) else yaml.safe_dump_all(kept)


def test_no_deprecated_vllm_metric_name_anywhere_in_the_render():
    skipped = 0
    for folder, _, files in os.walk(serving_render.render_all()["seed002"]):
        for name in files:
            raw = open(os.path.join(folder, name), encoding="utf-8").read()
            text = _without_router_code(raw) if name.endswith((".yaml", ".yml")) else raw
            skipped += text != raw
            for deprecated in CATALOG["vllm_deprecated"]:
                assert not re.search(re.escape(deprecated) + r"(?![\w:])", text), f"{deprecated} in {name}"
    assert skipped  # the router code was found and left out, not missed


def test_dashboards_cover_gpu_and_vllm_signals():
    gpu = " ".join(_dashboard_queries(_dashboards()["gpu.json"]))
    for metric in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"):
        assert metric in gpu
    vllm = _dashboard_queries(_dashboards()["vllm.json"])
    text = " ".join(vllm)
    for hist in ("vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds"):
        quantiles = {q for q in ("0.5", "0.95", "0.99") if f"histogram_quantile({q}, sum by (le, model_name) (rate({hist}_bucket" in text}
        assert quantiles == {"0.5", "0.95", "0.99"}, hist
    for metric in ("vllm:request_success_total", "vllm:generation_tokens_total", "vllm:num_requests_running",
                   "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert metric in text
    assert "sum by (pod)" in text and "sum by (model_name)" in text  # per pod and per model


def test_alerts_cover_the_issue_list(docs):
    rules = {r["alert"]: r for g in _find(docs, "PrometheusRule", "llm-platform")["spec"]["groups"] for r in g["rules"]
             if "alert" in r}
    for alert in ("VLLMPodNotReady", "VLLMQueueDepthHigh", "VLLMKVCacheNearlyFull", "GPUMemoryNearlyFull",
                  "VLLMErrorRate", "RouterErrorRate", "VLLMMetricsMissing"):
        assert rules[alert]["for"], alert
        assert rules[alert]["labels"]["severity"] in ("warning", "critical")
    assert 'namespace="managed"' in rules["VLLMQueueDepthHigh"]["expr"]
    assert "> 10" in rules["VLLMQueueDepthHigh"]["expr"]


def test_metric_catalog_matches_the_installed_vllm():
    """The vLLM names in the catalog exist in the vLLM release the platform pins (when installed)."""
    candidates = glob.glob(os.path.expanduser("~/.cache/llmops/venvs/serving-*/lib/python3*/site-packages/vllm/v1/metrics/loggers.py"))
    candidates += glob.glob(os.path.join(os.environ.get("LLMOPS_CACHE", "/nonexistent"), "venvs/serving-*/lib/python3*/site-packages/vllm/v1/metrics/loggers.py"))
    if not candidates:
        pytest.skip("serving venv (vLLM) not installed here")
    source = open(candidates[0], encoding="utf-8").read()
    defined = set(re.findall(r'name="(vllm:[a-z0-9_]+)"', source))
    vllm = CATALOG["vllm"]
    for name in vllm["gauges"] + vllm["histograms"]:
        assert name in defined, name
    for name in vllm["counters"]:
        assert name.removesuffix("_total") in defined, name
    for name in CATALOG["vllm_deprecated"]:
        assert name.removesuffix("_total") not in defined, f"{name} is still exported; not deprecated"


def test_router_metric_names_match_the_router():
    """The catalog's router names are exactly what the router exports (one of each series)."""
    sys.path[:0] = app_code.pythonpath("router", os.path.join(ROOT, "apps")).split(os.pathsep)
    from prometheus_client.parser import text_string_to_metric_families

    from llmops_router.replicas import Replica
    from llmops_router.telemetry import RouterMetrics

    metrics = RouterMetrics(lambda: [Replica("r0", "m", "http://127.0.0.1:9")])
    metrics.finished("m", 200, 0.1)
    metrics.first_byte.labels("m", "r0").observe(0.01)
    metrics.errors.labels("m", "r0", "connect").inc()
    metrics.choices.labels("m", "r0").inc()
    metrics.retries.labels("m").inc()
    exported = {}
    for family in text_string_to_metric_families(metrics.response().body.decode()):
        exported.setdefault(family.type + "s", set()).add(family.name + ("_total" if family.type == "counter" else ""))
    assert exported == {kind: set(names) for kind, names in CATALOG["router"].items()}


def test_broken_dashboard_query_is_caught():
    board = copy.deepcopy(_dashboards()["vllm.json"])
    board["panels"][1]["targets"][0]["expr"] = "sum(vllm:gpu_cache_usage_perc)"
    bad = [q for q in _dashboard_queries(board) if not policy.promql_metric_names(q) <= ALLOWED]
    assert bad == ["sum(vllm:gpu_cache_usage_perc)"]


def test_prometheus_rule_is_the_one_rule_source(docs):
    """The PrometheusRule carries exactly the groups the local target's rule file gets."""
    from ansible_collections.llmops.platform.plugins.module_utils.monitoring import rules

    rendered = _find(docs, "PrometheusRule", "llm-platform")["spec"]["groups"]
    assert rendered == rules.rule_groups({"namespace": "managed"})
    assert {r["alert"] for g in rendered for r in g["rules"] if "alert" in r} >= {"VLLMReplicaDown", "RouterDown", "GatewayDown"}


def test_alert_receivers_render_as_secret_references_routed_by_alert_name(docs):
    from ansible_collections.llmops.platform.plugins.module_utils.monitoring import rules

    assert not any(d["kind"] == "AlertmanagerConfig" for d in docs)  # seed002 sets no receivers
    path = os.path.join(_home("seed000"), "manifests", "alertmanager-config.yaml")
    config = yaml.safe_load(open(path, encoding="utf-8"))
    assert config["kind"] == "AlertmanagerConfig" and config["metadata"]["namespace"] == "monitoring"
    assert "http" not in open(path, encoding="utf-8").read()  # Secret references only
    spec = config["spec"]
    assert [r["name"] for r in spec["receivers"]] == ["platform-ui-only", "oncall", "audit"]
    assert spec["receivers"][1]["webhookConfigs"] == [{"urlSecret": {"name": "alert-webhooks", "key": "oncall"},
                                                       "sendResolved": True}]
    assert spec["receivers"][2]["webhookConfigs"][0]["sendResolved"] is False
    names = rules.alert_names(rules.rule_groups())
    assert spec["route"]["matchers"] == [{"name": "alertname", "matchType": "=~", "value": "|".join(names)}]
    assert [r["receiver"] for r in spec["route"]["routes"]] == ["oncall", "audit"]
    values = yaml.safe_load(open(os.path.join(_home("seed000"), "helm", "values.yaml")))
    assert values["alertmanager"]["alertmanagerSpec"]["alertmanagerConfigMatcherStrategy"] == {"type": "None"}


def test_dashboard_configmaps_carry_the_dashboards_code_output(docs):
    from ansible_collections.llmops.platform.plugins.module_utils.monitoring import grafana

    for name, text in grafana.render_all().items():
        cm = _find(docs, "ConfigMap", f"grafana-dashboard-llmops-{name[:-5]}")
        assert json.loads(cm["data"][name]) == json.loads(text)
