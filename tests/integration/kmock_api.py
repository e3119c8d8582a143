"""An in-memory Kubernetes API (kmock) for exercising the apply path: `python kmock_api.py PORT KUBECONFIG`.

It stores what clients send and answers discovery for the kinds the serving layer
applies. It proves the apply tasks run and are idempotent; it is not a cluster (no
schemas, no controllers, no scheduling), so readiness waits and the smoke test are off.
"""
from __future__ import annotations

import asyncio
import sys

import kmock
from kmock._internal import parsing

_parse_path = parsing.parse_path


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    # kmock 0.8 reads /api/v1/namespaces[/NAME] as a namespaced path and fails; a Namespace
    # is a cluster-scoped object named NAME.
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _parse_path(path)


parsing.parse_path = _parse_path_with_namespaces

# group/version/plural -> (kind, namespaced)
RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/services": ("Service", True),
    "v1/configmaps": ("ConfigMap", True),
    "v1/secrets": ("Secret", True),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "v1/pods": ("Pod", True),
    "apps/v1/deployments": ("Deployment", True),
    "apps/v1/daemonsets": ("DaemonSet", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
    "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True),
    "keda.sh/v1alpha1/scaledobjects": ("ScaledObject", True),
    "monitoring.coreos.com/v1/servicemonitors": ("ServiceMonitor", True),
    "monitoring.coreos.com/v1/podmonitors": ("PodMonitor", True),
    "monitoring.coreos.com/v1/prometheusrules": ("PrometheusRule", True),
}

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{url}"}}}}]
users: [{{name: kmock, user: {{token: kmock}}}}]
contexts: [{{name: kmock, context: {{cluster: kmock, user: kmock}}}}]
current-context: kmock
"""


async def main(port: int, kubeconfig: str) -> None:
    async with kmock.KubernetesEmulator() as api, kmock.Server(api, port=port or None) as server:
        for key, (kind, namespaced) in RESOURCES.items():
            api.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, singular=kind.lower(),
                verbs={"get", "list", "create", "update", "patch", "delete", "watch"})
        with open(kubeconfig, "w", encoding="utf-8") as handle:
            handle.write(KUBECONFIG.format(url=str(server.url).rstrip("/")))
        print(f"kmock listening on {server.url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
