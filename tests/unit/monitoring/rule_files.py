"""Render the platform's rule file with the monitoring role's default thresholds, and run
promtool on it (shared by the rule tests and the dashboard query checks)."""
from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE_DEFAULTS = os.path.join(ROOT, "roles", "monitoring", "defaults", "main.yml")
PROMTOOL_CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promtool")


def role_settings() -> dict:
    """RuleSettings as the role passes them by default (monitoring_alert_<field>)."""
    defaults = yaml.safe_load(open(ROLE_DEFAULTS, encoding="utf-8"))
    platform = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/kubernetes.yml"), encoding="utf-8"))
    settings = {key.removeprefix("monitoring_alert_"): value for key, value in defaults.items()
                if key.startswith("monitoring_alert_") and key not in ("monitoring_alertmanager_receivers",)}
    settings["namespace"] = platform["platform_namespace"]
    return settings


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, ("promtool is missing: `make test` installs it (scripts/install-monitoring-packages.sh, "
                  "Debian's prometheus package); run that script as root")
    return path


def run_promtool(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def write_rules(directory: str, settings: dict | None = None) -> tuple[str, list[dict]]:
    groups = rules.rule_groups(role_settings() if settings is None else settings)
    path = os.path.join(directory, "rules.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"groups": groups}, handle, sort_keys=False, width=1000)
    return path, groups
