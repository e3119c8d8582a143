"""Filters for the Kubernetes target of the serving layer."""
from __future__ import annotations

from typing import Any


def k8s_service_url(name: str, namespace: str, port: int, cluster_domain: str = "cluster.local") -> str:
    """In-cluster URL of a Service: http://<name>.<namespace>.svc.<domain>:<port>."""
    return f"http://{name}.{namespace}.svc.{cluster_domain}:{int(port)}"


def router_k8s_models(models: list[dict[str, Any]], namespace: str, port: int = 8000,
                      cluster_domain: str = "cluster.local") -> list[dict[str, Any]]:
    """Router config entries for models served on Kubernetes.

    `replicas` holds the model's ClusterIP Service, which any router build can use (kube-proxy
    then spreads connections). `discovery` names the headless `<model>-replicas` Service:
    its DNS returns one address per *ready* pod, which is what a load-aware router needs
    to poll and pick individual replicas (pod IPs change, so they cannot be listed here).
    """
    entries = []
    for model in models:
        name = model["name"]
        entry = {
            "name": name,
            "replicas": [{"name": name, "url": k8s_service_url(name, namespace, port, cluster_domain)}],
            "discovery": {"type": "dns", "host": f"{name}-replicas.{namespace}.svc.{cluster_domain}", "port": int(port),
                          "scheme": "http"},
        }
        # One Deployment per model, so every discovered pod has the model's batch size.
        slots = (model.get("vllm_args") or {}).get("max_num_seqs")
        if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0:
            entry["max_num_seqs"] = slots
        entries.append(entry)
    return entries


class FilterModule:
    def filters(self):
        return {"router_k8s_models": router_k8s_models, "k8s_service_url": k8s_service_url}
