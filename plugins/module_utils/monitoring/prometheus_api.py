"""A small client of Prometheus's HTTP API (query_range) for the local monitoring views.

Stdlib only. Returns plain data: one Series per result, named with the panel's Grafana
legend template ({{pod}}, {{model_name}} ...), with NaN/Inf samples dropped.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:9090"


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' label value."""
    return (
        re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
        or ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        or "value"
    )


def _get(base_url: str, path: str, params: dict, what: str, timeout: float) -> dict:
    """GET an API path; the `data` of a successful answer, else PrometheusError naming `what`."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the operator's Prometheus URL)
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("error", "")
        except ValueError:
            detail = ""
        raise PrometheusError(f"{base_url}: HTTP {exc.code} for {what!r}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PrometheusError(
            f"{base_url} does not answer ({exc}); start it with "
            "`ansible-playbook playbooks/monitoring.yml` or check the URL"
        ) from None
    if body.get("status") != "success":
        raise PrometheusError(f"{base_url}: {body.get('error', body)} for {what!r}")
    return body["data"]


def query_range(
    base_url: str, expr: str, start: float, end: float, step: float, legend_template: str = "", timeout: float = 10.0
) -> list[Series]:
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    out = []
    for result in _get(base_url, "/api/v1/query_range", params, expr, timeout)["result"]:
        points = [(float(t), float(v)) for t, v in result.get("values", []) if math.isfinite(float(v))]
        out.append(Series(legend(legend_template, result["metric"]), result["metric"], points))
    return sorted(out, key=lambda s: s.name)


def query(base_url: str, expr: str, timeout: float = 10.0) -> list[tuple[dict[str, str], float]]:
    """An instant query: (labels, value) per result of a vector expression, NaN/Inf dropped."""
    data = _get(base_url, "/api/v1/query", {"query": expr}, expr, timeout)
    out = []
    for result in data["result"] if data.get("resultType") == "vector" else []:
        value = float(result["value"][1])
        if math.isfinite(value):
            out.append((result["metric"], value))
    return out


def local_url(home: str | None = None) -> str:
    """The local target's Prometheus, as the monitoring role recorded it, else the default."""
    home = home or os.environ.get("LLMOPS_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "llmops")
    try:
        with open(os.path.join(home, "run", "monitoring.json"), encoding="utf-8") as handle:
            return json.load(handle)["prometheus_url"]
    except (OSError, ValueError, KeyError):
        return DEFAULT_URL
