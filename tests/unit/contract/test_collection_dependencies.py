"""galaxy.yml declares every collection the collection's content uses, with honest ranges.

A plain Galaxy install of llmops.platform pulls in only what galaxy.yml declares, so a role
calling an undeclared collection fails at run time on the user's machine, never here (the
ansible package bundles everything). These tests read the content for fully qualified names
and hold galaxy.yml and collections/requirements.yml to them.
"""
from __future__ import annotations

import glob
import json
import os

import ansible
import collection_usage
import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# What ships and runs on users' machines, and what only the tests and Molecule run.
SHIPPED = ["roles", "playbooks", "site.yml", "plugins", "inventories", "meta", "ansible.cfg"]
TESTS = ["tests", "molecule"]
SELF = "llmops.platform"
BUNDLE = os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections")


def _bundled_versions() -> dict[str, str]:
    versions = {}
    for manifest in glob.glob(os.path.join(BUNDLE, "*", "*", "MANIFEST.json")):
        with open(manifest, encoding="utf-8") as handle:
            info = json.load(handle)["collection_info"]
        versions[f"{info['namespace']}.{info['name']}"] = info["version"]
    return versions


BUNDLED = _bundled_versions()


def _galaxy_dependencies() -> dict[str, str]:
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["dependencies"] or {}


def _requirements() -> dict[str, str]:
    with open(os.path.join(ROOT, "collections", "requirements.yml"), encoding="utf-8") as handle:
        return {entry["name"]: entry["version"] for entry in yaml.safe_load(handle)["collections"]}


def _undeclared(paths: list[str], declared: set[str]) -> dict[str, list[str]]:
    used = collection_usage.usage(ROOT, paths, set(BUNDLED))
    allowed = declared | collection_usage.BUILTIN | {SELF}
    # These contract tests quote made-up names on purpose (the scanner's own test).
    here = os.path.relpath(os.path.dirname(os.path.abspath(__file__)), ROOT)
    undeclared = {}
    for name, files in used.items():
        files = sorted(f for f in files if not f.startswith(here + os.sep))
        if name not in allowed and files:
            undeclared[name] = files
    return undeclared


def test_shipped_content_uses_only_declared_collections():
    missing = _undeclared(SHIPPED, set(_galaxy_dependencies()))
    assert not missing, (
        "add these to galaxy.yml `dependencies` (and collections/requirements.yml, same range): "
        f"{missing}")


def test_tests_use_only_collections_they_install():
    missing = _undeclared(TESTS, set(_requirements()))
    assert not missing, f"add these to collections/requirements.yml: {missing}"


def test_requirements_repeat_galaxy_ranges():
    requirements = _requirements()
    for name, version_range in _galaxy_dependencies().items():
        assert requirements.get(name) == version_range, (
            f"collections/requirements.yml must pin {name} to galaxy.yml's {version_range!r}")


@pytest.mark.parametrize("name", sorted(_requirements()))
def test_ranges_contain_the_bundled_version(name):
    """Offline, only the bundled versions exist: a range that excludes one cannot install."""
    assert name in BUNDLED, f"{name} is not in the ansible package: it cannot be installed offline"
    version_range = _requirements()[name]
    assert meets_requirements(BUNDLED[name], version_range), (
        f"{name} {version_range} excludes the bundled {BUNDLED[name]}")


def test_scanner_finds_every_kind_of_use():
    """The usage scan itself: each way content names a collection is seen, prose is not."""
    playbook = """
- name: Play mentioning some.prose.name in its name
  hosts: all
  module_defaults:
    group/ns1.c1.group: {}
  tasks:
    - name: A task
      ns2.c2.module: {}
    - name: Action form
      action: ns3.c3.thing
    - name: Jinja
      ansible.builtin.debug:
        msg: "{{ lookup('ns4.c4.lookup', 'x') }} {{ x | ns5.c5.filter }} {{ y is ns6.c6.test }}"
  roles:
    - role: ns7.c7.role
"""
    found = {collection_usage.collection_of(n) for n in collection_usage.yaml_names(playbook)}
    assert found == {"ns1.c1", "ns2.c2", "ns3.c3", "ns4.c4", "ns5.c5", "ns6.c6", "ns7.c7", "ansible.builtin"}
    python = "from ansible_collections.ns8.c8.plugins.module_utils import x\nCB = 'ns9.c9.json'\n"
    found = {collection_usage.collection_of(n) for n in collection_usage.python_names(python, {"ns9.c9"})}
    assert found == {"ns8.c8", "ns9.c9"}
