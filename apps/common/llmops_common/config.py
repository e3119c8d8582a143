"""Config files (JSON, or YAML when PyYAML is importable) and the checks both apps' configs
use; an error names the field and the fix."""
from __future__ import annotations

import json
from typing import Any


class ConfigError(ValueError):
    pass


def read_config(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml  # optional: PyYAML is in both platform venvs, JSON needs nothing
        except ImportError as exc:
            raise ConfigError(f"{path}: not JSON and PyYAML is not installed") from exc
        return yaml.safe_load(text)


def number(raw: dict, key: str, default: float, minimum: float, kind: type = float) -> Any:
    """raw[key] (or the default) as `kind`, at least `minimum`."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    return kind(value)


def base_url(value: Any, where: str, example: str = "http://127.0.0.1:8000") -> str:
    """An http(s) base URL without the trailing slash."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: must be an http(s) base URL such as {example}, got {value!r}")
    return value.rstrip("/")
