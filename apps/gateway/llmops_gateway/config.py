"""Gateway configuration: a JSON (or YAML) file rendered by the `gateway` role.

API keys never live in this file: they come from `api_keys_file` (one key per line, `#`
comments; a Kubernetes Secret volume or a 0600 file) and/or the environment variable named
by `api_keys_env`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from llmops_common.config import ConfigError, base_url, number, read_config

__all__ = ["ConfigError", "GatewayConfig", "load_config", "parse_config"]

DEFAULT_CHAT_PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "chat", "index.html")


@dataclass(frozen=True)
class GatewayConfig:
    upstream_url: str  # the router (or one vLLM) base URL, e.g. http://127.0.0.1:8000
    host: str = "127.0.0.1"
    port: int = 8080
    connect_timeout_s: float = 5.0
    # Longest wait for the upstream's response headers, and the longest gap between two body
    # chunks of a streamed answer (a slow prefill shows up as the first one).
    read_timeout_s: float = 300.0
    health_timeout_s: float = 2.0
    api_keys_file: str = ""
    api_keys_env: str = "LLMOPS_GATEWAY_API_KEYS"
    # Requests one client (API key, or address without keys) may have in flight; 0 = no limit.
    max_inflight_per_client: int = 0
    # Largest request body accepted (bytes); prompts beyond it get 413.
    max_body_bytes: int = 4 * 1024 * 1024
    chat_page: str = DEFAULT_CHAT_PAGE


def parse_config(raw: Any) -> GatewayConfig:
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a mapping with `upstream_url`")
    url = base_url(raw.get("upstream_url"), "upstream_url (the router's)")
    unknown = set(raw) - set(GatewayConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}; see apps/gateway/README.md")
    if "api_keys" in raw:  # caught above too; kept explicit because it is the dangerous one
        raise ConfigError("api_keys: keys do not belong in the config; use api_keys_file or api_keys_env")
    return GatewayConfig(
        upstream_url=url,
        host=str(raw.get("host", "127.0.0.1")),
        port=number(raw, "port", 8080, 0, int),
        connect_timeout_s=number(raw, "connect_timeout_s", 5.0, 0.01),
        read_timeout_s=number(raw, "read_timeout_s", 300.0, 0.01),
        health_timeout_s=number(raw, "health_timeout_s", 2.0, 0.01),
        api_keys_file=str(raw.get("api_keys_file") or ""),
        api_keys_env=str(raw.get("api_keys_env") or "LLMOPS_GATEWAY_API_KEYS"),
        max_inflight_per_client=number(raw, "max_inflight_per_client", 0, 0, int),
        max_body_bytes=number(raw, "max_body_bytes", 4 * 1024 * 1024, 1, int),
        chat_page=str(raw.get("chat_page") or DEFAULT_CHAT_PAGE),
    )


def load_config(path: str) -> GatewayConfig:
    return parse_config(read_config(path))
