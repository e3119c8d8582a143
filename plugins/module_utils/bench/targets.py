"""Where the benchmark sends each model's traffic, per platform target.

Local target: each model's own vLLM port on vllm_host. Kubernetes target: the models are
reached the way clients reach them, through the router (or gateway) Service; the controller
gets there through `kubectl port-forward` to a loopback port or through a URL the user gives
(an Ingress, a LoadBalancer). A vLLM pod port on 127.0.0.1 would be nothing on the controller.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit


class TargetError(ValueError):
    pass


def benchmark_targets(models: List[Dict[str, Any]], platform_target: str, vllm_host: str,
                      service_url: Optional[str] = None) -> List[Dict[str, Any]]:
    """The served models (replicas > 0), each with base_url and via (vllm or service) added."""
    served = [m for m in models if int(m.get("replicas", 1)) > 0]
    if platform_target == "local":
        return [{**m, "base_url": f"http://{vllm_host}:{m['port']}", "via": "vllm"} for m in served]
    if platform_target != "kubernetes":
        raise TargetError(f"platform_target: {platform_target!r}; use local or kubernetes")
    if not service_url:
        raise TargetError("benchmark_k8s_url: empty; on the kubernetes target the benchmark goes "
                          "through the router Service (the role port-forwards to it when "
                          "platform_apply is true) or an URL you give, e.g. an Ingress")
    parts = urlsplit(str(service_url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"benchmark_k8s_url: {service_url!r} is not an http(s) URL")
    base = str(service_url).rstrip("/")
    return [{**m, "base_url": base, "via": "service"} for m in served]
