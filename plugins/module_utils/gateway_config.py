"""Build the gateway's config file (apps/gateway) from the gateway role's variables.

Pure Python, no Ansible: the role renders the same document on both targets (a file on the
local target, a ConfigMap on Kubernetes) and the tests call it directly. The gateway
validates it again on start; this fails earlier, naming the role variable to fix.
"""
from __future__ import annotations

import math
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.router_config import DEFAULTS as ROUTER_DEFAULTS

# Tunables copied into the file as they are: key -> (type, smallest value). Each comes from
# the role variable gateway_<key>.
SETTINGS: dict[str, tuple[type, float]] = {
    "connect_timeout_s": (float, 0.01),
    "read_timeout_s": (float, 0.01),
    "health_timeout_s": (float, 0.01),
    "max_inflight_per_client": (int, 0),
    "max_body_bytes": (int, 1),
}


class GatewayConfigError(ValueError):
    pass


def gateway_upstream(explicit: str | None, router_settings: dict[str, Any] | None, router_url: str) -> str:
    """Where the gateway forwards to: gateway_upstream_url when set, else the router, or ""
    when llm_router.policy is kube_proxy or llm_router.implementation is gateway_api_inference
    (no router runs, so there is nothing to stand in front of)."""
    if explicit:
        return str(explicit)
    settings = router_settings or {}
    policy = settings.get("policy") or ROUTER_DEFAULTS["policy"]
    if settings.get("implementation", "llmops") == "gateway_api_inference":
        return ""
    return "" if policy == "kube_proxy" else router_url


def _number(key: str, value: Any) -> float | int:
    kind, minimum = SETTINGS[key]
    if isinstance(value, str):  # -e gateway_read_timeout_s=60 arrives as a string
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GatewayConfigError(f"gateway_{key}: must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise GatewayConfigError(f"gateway_{key}: must be a whole number, got {value!r}")
    if value < minimum:
        raise GatewayConfigError(f"gateway_{key}: must be >= {minimum:g}, got {value!r}")
    return kind(value)


def build_gateway_config(upstream_url: str, settings: dict[str, Any], host: str, port: Any,
                         chat_page: str, api_keys_file: str = "") -> dict[str, Any]:
    """The config document; `settings` holds every key of SETTINGS. API keys never go in:
    only the file they are read from (`api_keys_file`, omitted when empty)."""
    if not isinstance(upstream_url, str) or not upstream_url.startswith(("http://", "https://")):
        raise GatewayConfigError(
            f"gateway_upstream_url: an http(s) base URL such as http://127.0.0.1:8000, got {upstream_url!r}")
    unknown = sorted(set(settings) - set(SETTINGS))
    missing = sorted(set(SETTINGS) - set(settings))
    if unknown or missing:
        raise GatewayConfigError(f"gateway settings: unknown {unknown}, missing {missing}; expected {sorted(SETTINGS)}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise GatewayConfigError(f"gateway port: must be 1-65535, got {port!r}")
    config: dict[str, Any] = {"upstream_url": upstream_url, "host": str(host), "port": port}
    config.update({key: _number(key, settings[key]) for key in SETTINGS})
    config["chat_page"] = str(chat_page)
    if api_keys_file:
        config["api_keys_file"] = str(api_keys_file)
    return config
