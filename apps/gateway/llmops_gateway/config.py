"""Gateway configuration: a JSON (or YAML) file rendered by the `gateway` role.

API keys never live in this file: they come from `api_keys_file` (one key per line, `#`
comments; a Kubernetes Secret volume or a 0600 file) and/or the environment variable named
by `api_keys_env`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

DEFAULT_CHAT_PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "chat", "index.html")


class ConfigError(ValueError):
    pass


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


def _num(raw: dict, key: str, default: float, minimum: float, kind: type = float) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    return kind(value)


def parse_config(raw: Any) -> GatewayConfig:
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a mapping with `upstream_url`")
    url = raw.get("upstream_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"upstream_url: the router's http(s) base URL, e.g. http://127.0.0.1:8000, got {url!r}")
    unknown = set(raw) - set(GatewayConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}; see apps/gateway/README.md")
    if "api_keys" in raw:  # caught above too; kept explicit because it is the dangerous one
        raise ConfigError("api_keys: keys do not belong in the config; use api_keys_file or api_keys_env")
    return GatewayConfig(
        upstream_url=url.rstrip("/"),
        host=str(raw.get("host", "127.0.0.1")),
        port=_num(raw, "port", 8080, 0, int),
        connect_timeout_s=_num(raw, "connect_timeout_s", 5.0, 0.01),
        read_timeout_s=_num(raw, "read_timeout_s", 300.0, 0.01),
        health_timeout_s=_num(raw, "health_timeout_s", 2.0, 0.01),
        api_keys_file=str(raw.get("api_keys_file") or ""),
        api_keys_env=str(raw.get("api_keys_env") or "LLMOPS_GATEWAY_API_KEYS"),
        max_inflight_per_client=_num(raw, "max_inflight_per_client", 0, 0, int),
        max_body_bytes=_num(raw, "max_body_bytes", 4 * 1024 * 1024, 1, int),
        chat_page=str(raw.get("chat_page") or DEFAULT_CHAT_PAGE),
    )


def load_config(path: str) -> GatewayConfig:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml  # optional: PyYAML is in both platform venvs
        except ImportError as exc:
            raise ConfigError(f"{path}: not JSON and PyYAML is not installed") from exc
        raw = yaml.safe_load(text)
    return parse_config(raw)
