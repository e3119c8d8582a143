"""What each app ships: its package, llmops_common and its files; nothing it imports is
missing from the shipment or from the runtime (the vLLM image: aiohttp, prometheus_client)."""
import ast
import os
import sys

import pytest

from ansible_collections.llmops.platform.plugins.module_utils import app_code

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "apps")
# What the pinned vLLM image and the serving venv have besides the standard library
# (PyYAML is optional: only YAML configs need it).
# uvloop: a vLLM dependency (so in the vLLM image and the serving venv), optional in the apps.
RUNTIME = {"aiohttp", "prometheus_client", "yaml", "uvloop"}


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("app", ["router", "gateway"])
def test_an_app_ships_its_package_and_the_shared_one(app):
    files = app_code.code_files(app, APPS)
    keys = [app_code.configmap_key(f) for f in files]
    assert f"llmops_{app}.__main__.py" in keys and "llmops_common.proxy.py" in keys
    assert len(set(keys)) == len(keys)  # no two files share a ConfigMap key
    assert all(app_code.mount_path(k) == os.path.relpath(f, os.path.dirname(os.path.dirname(f)))
               for k, f in zip(keys, files))
    shipped = {k.split(".")[0] for k in keys}
    for path in files:
        if path.endswith(".py"):
            outside = _imports(path) - shipped - RUNTIME - set(sys.stdlib_module_names) - {"__future__"}
            assert not outside, f"{path} imports {outside}: not shipped and not in the vLLM image"


def test_the_gateway_ships_its_chat_page_and_pythonpath_lists_both_roots():
    assert "chat.index.html" in [app_code.configmap_key(f) for f in app_code.code_files("gateway", APPS)]
    assert app_code.pythonpath("router", APPS).split(os.pathsep) == [os.path.join(APPS, "router"),
                                                                    os.path.join(APPS, "common")]


def test_unknown_app_and_wrong_folder_are_clear_errors(tmp_path):
    with pytest.raises(app_code.AppCodeError, match="unknown app 'dashboard'"):
        app_code.code_files("dashboard", APPS)
    with pytest.raises(app_code.AppCodeError, match="no llmops_\\* package"):
        app_code.code_files("router", str(tmp_path))
