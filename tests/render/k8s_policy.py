"""Policy checks over rendered manifests (serving and monitoring layers).

Each check returns a list of problems (empty: fine), so a test can assert that the real
render passes and that a deliberately broken copy does not.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

Obj = dict[str, Any]
WORKLOADS = ("Deployment", "DaemonSet", "StatefulSet")


def by_kind(docs: Iterable[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(obj: Obj) -> Obj:
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: Obj) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels + matchExpressions); {} selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workload_containers(docs: Iterable[Obj]) -> Iterable[tuple[Obj, Obj]]:
    """(workload, container) for every container, init containers included, of every workload."""
    for obj in docs:
        if obj.get("kind") in WORKLOADS:
            spec = pod_spec(obj)
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield obj, container


def image_problems(docs: Iterable[Obj]) -> list[str]:
    problems = []
    for obj, container in workload_containers(docs):
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            problems.append(f"{obj['metadata']['name']}/{container['name']}: image {image} is not pinned to a tag")
    return problems


def resource_problems(docs: Iterable[Obj]) -> list[str]:
    problems = []
    for obj, container in workload_containers(docs):
        res = container.get("resources") or {}
        where = f"{obj['metadata']['name']}/{container['name']}"
        for part in ("requests", "limits"):
            for key in ("cpu", "memory"):
                if key not in (res.get(part) or {}):
                    problems.append(f"{where}: resources.{part}.{key} missing")
        gpu_req = (res.get("requests") or {}).get("nvidia.com/gpu")
        gpu_lim = (res.get("limits") or {}).get("nvidia.com/gpu")
        if gpu_req != gpu_lim:
            problems.append(f"{where}: nvidia.com/gpu requests {gpu_req} != limits {gpu_lim}")
    return problems


def probe_problems(deployment: Obj, min_startup_s: int = 300, min_liveness_s: int = 120) -> list[str]:
    """vLLM containers: startup budget for slow loads, readiness, a liveness that tolerates load."""
    problems = []
    name = deployment["metadata"]["name"]
    for container in pod_spec(deployment)["containers"]:
        where = f"{name}/{container['name']}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = container.get(probe)
            if not spec:
                problems.append(f"{where}: {probe} missing")
                continue
            if (spec.get("httpGet") or {}).get("path") != "/health":
                problems.append(f"{where}: {probe} does not GET /health")
        startup = container.get("startupProbe") or {}
        if startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) < min_startup_s:
            problems.append(f"{where}: startupProbe allows less than {min_startup_s}s to load the model")
        live = container.get("livenessProbe") or {}
        if live.get("periodSeconds", 10) * live.get("failureThreshold", 3) < min_liveness_s:
            problems.append(f"{where}: livenessProbe kills a slow pod within {min_liveness_s}s")
        if live.get("timeoutSeconds", 1) < 5:
            problems.append(f"{where}: livenessProbe timeout under 5s fails pods that are merely busy")
    return problems


def security_problems(obj: Obj, allow_root: bool = False) -> list[str]:
    problems = []
    spec = pod_spec(obj)
    pod_ctx = spec.get("securityContext") or {}
    for container in spec.get("initContainers", []) + spec["containers"]:
        where = f"{obj['metadata']['name']}/{container['name']}"
        ctx = container.get("securityContext") or {}
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: capabilities must drop ALL")
        if ctx.get("privileged"):
            problems.append(f"{where}: privileged")
        if not allow_root and not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append(f"{where}: not runAsNonRoot")
    return problems


def selector_problems(docs: list[Obj]) -> list[str]:
    """Every Deployment/Service/PDB selector selects the pods of exactly one workload."""
    problems = []
    workloads = [d for d in docs if d.get("kind") in WORKLOADS]
    for obj in workloads:
        if not selector_matches(obj["spec"]["selector"], pod_labels(obj)):
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: selector does not match its pod labels")
    for obj in docs:
        if obj.get("kind") == "Service":
            selector = {"matchLabels": obj["spec"].get("selector") or {}}
        elif obj.get("kind") == "PodDisruptionBudget":
            selector = obj["spec"]["selector"]
        else:
            continue
        matched = [w["metadata"]["name"] for w in workloads
                   if w["metadata"].get("namespace") == obj["metadata"].get("namespace")
                   and selector_matches(selector, pod_labels(w))]
        if len(matched) != 1:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: selects {matched or 'no'} workloads, want one")
    return problems


# ---- PromQL ----
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "bool", "offset", "le", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a Grafana label_values() query) reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"label_values\(\s*([A-Za-z_:][\w:]*)[^)]*\)", r"\1", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def allowed_metric_names(catalog: dict[str, Any]) -> set[str]:
    names: set[str] = set()

    def histogram(base: str) -> set[str]:
        return {base + suffix for suffix in ("_bucket", "_sum", "_count")}

    for group in ("vllm", "router"):
        entry = catalog[group]
        names |= set(entry.get("gauges", [])) | set(entry.get("counters", []))
        for base in entry.get("histograms", []):
            names |= histogram(base)
    names |= set(catalog["dcgm"]) | set(catalog["kubernetes"])
    return names
